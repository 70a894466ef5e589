"""Call a compiled numba function through its address, from inside another kernel.

numba builds each kernel's machine code from the kernel *and every function it calls*, linked in
and optimised again as one module. A ``parallel=True`` kernel that calls the per-rows kernel of
:mod:`numlstm.kernels.cpu.recurrent` inside its ``prange`` therefore re-optimised and re-generated
the whole call tree four times over (the kernel, its parallel region, and two wrappers numba adds
around the region): about 8 s of a 20 s cold compile per float type.

Here the caller takes the callee's address as a plain integer argument and calls it with
numba's own calling convention, so nothing is linked in. The address is looked up in
Python for the argument types of each call (:func:`compiled_address`), from the same
type fingerprints numba's dispatcher uses, so it always matches the arguments passed;
the callee is compiled, or loaded from numba's cache, by its own dispatcher.

The same lookup gives Python callers the compiled version itself
(:func:`compiled_function`): the kernels take named tuples of arrays, which numba's
dispatcher types at about 0.8 us each per call (a plain array: 0.1 us), so the CPU
backend calls the compiled version found here rather than the dispatcher.
"""

from numba import types
from numba._dispatcher import compute_fingerprint
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["call_compiled", "compiled_address", "compiled_function"]


@intrinsic
def call_compiled(typingctx, address, arguments):
    """``callee(*arguments)`` for the callee compiled at ``address`` (an integer).

    The callee must return nothing and have been compiled for exactly the types of
    ``arguments`` (a tuple): take ``address`` from :func:`compiled_address`. An exception
    raised by the callee propagates to the caller as a direct call's would (inside
    ``prange``, numba reports it as a ``SystemError``, for direct calls too).
    """
    if not isinstance(address, types.Integer) or not isinstance(arguments, types.BaseTuple):
        return None
    argument_types = tuple(arguments.types)

    def codegen(context, builder, signature, llvm_args):
        address_value, packed = llvm_args
        function_type = context.call_conv.get_function_type(types.none, argument_types)
        callee = builder.inttoptr(address_value, function_type.as_pointer())
        values = [builder.extract_value(packed, i) for i in range(len(argument_types))]
        status, _ = context.call_conv.call_function(builder, callee, types.none,
                                                    argument_types, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(address, arguments), codegen


_versions = {}


def _lookup_key(dispatcher, arguments):
    """What determines the compiled version: the classes of the arguments and numba's type
    fingerprint of their values.

    Named tuples (the kernels' records) are fingerprinted as the plain tuples of their
    fields, their class standing beside: numba's fingerprint of a named tuple takes 4x as
    long (0.8 us against 0.2 us for six arrays), and describes the same type.
    """
    return (dispatcher, tuple(map(type, arguments)),
            compute_fingerprint(tuple([tuple(value) if isinstance(value, tuple) else value
                                       for value in arguments])))


def _compiled_version(dispatcher, arguments):
    """``(entry point, address, return type)`` of ``dispatcher`` compiled for the types of
    ``arguments``; the address is None when that version returns a value."""
    key = _lookup_key(dispatcher, arguments)
    version = _versions.get(key)
    if version is None:
        argument_types = tuple(dispatcher.typeof_pyval(value) for value in arguments)
        dispatcher.compile(argument_types)  # the return type is the callee's to infer
        result = dispatcher.overloads[argument_types]
        address = None
        if result.signature.return_type == types.none:
            address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        version = _versions[key] = (result.entry_point, address,
                                    result.signature.return_type)
    return version


def compiled_address(dispatcher, arguments):
    """Address of ``dispatcher`` compiled for the types of ``arguments`` (a tuple).

    Compiles it (or loads it from numba's cache) on first use for those types. The
    lookup costs about 2 us for the nine arguments of the forward per-rows kernel (four of
    them records of arrays).

    Raises
    ------
    TypeError
        If that compiled version returns a value (:func:`call_compiled` discards none).
    """
    _, address, return_type = _compiled_version(dispatcher, arguments)
    if address is None:
        raise TypeError(f"{dispatcher.py_func.__name__} must return nothing to be "
                        f"called through its address, not {return_type}")
    return address


def compiled_function(dispatcher, arguments):
    """``dispatcher`` compiled for the types of ``arguments`` (a tuple), as a Python
    callable: ``compiled_function(f, args)(*args)`` is ``f(*args)`` without the
    dispatcher's typing of each argument (see the module docstring).

    Compiles it (or loads it from numba's cache) on first use for those types. Call it only
    with arguments of those types: it converts them without checking.
    """
    return _compiled_version(dispatcher, arguments)[0]
