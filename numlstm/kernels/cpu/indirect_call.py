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

A caller can also hand its callee one pointer in place of many arguments: :func:`stash`
stores a tuple on the caller's stack, :func:`unstash` reads it back in the callee, and
:func:`erase_type` turns the pointer into a ``voidptr``, which a ``parallel=True`` loop
that serves callees of every argument type passes on (see
:mod:`numlstm.kernels.cpu.parallel_rows`). Such a callee is compiled for a pointer type
that Python cannot name from a value: :func:`stashed_address` looks it up.

The same lookup gives Python callers the compiled version itself
(:func:`compiled_function`): the kernels take named tuples of arrays, which numba's
dispatcher types at about 0.8 us each per call (a plain array: 0.1 us), so the CPU
backend calls the compiled version found here rather than the dispatcher.
"""

import contextlib

from numba import types
from numba._dispatcher import compute_fingerprint
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["call_compiled", "compiled_address", "compiled_address_for", "compiled_function",
           "erase_type", "recording_compiles", "set_before_compile", "stash", "stashed_address",
           "unstash"]


@intrinsic
def call_compiled(typingctx, address, arguments):
    """``callee(*arguments)`` for the callee compiled at ``address`` (an integer).

    The callee must return nothing and have been compiled for exactly the types of
    ``arguments`` (a tuple): take ``address`` from :func:`compiled_address`. One
    exception: a ``voidptr`` argument may stand for a parameter of any pointer type
    (:func:`erase_type`), since both are one machine address. An exception
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


def _borrowed(context, builder, typ, value):
    """``value`` with the memory-manager pointer of every array in it set to null.

    numba counts the references to an array's memory with atomic operations on that
    pointer's target, at every view it takes; two threads slicing the same arrays step
    after step then fight over one cache line (measured on a forward pass of 32 rows:
    two threads took 1.4 times as long as one, and 2.7 times as long as two threads
    without the counting). A null pointer, as in numba's own ``prange`` bodies, turns the
    counting off; the arrays stay alive because the caller holds them.
    """
    if isinstance(typ, types.Array):
        array = context.make_array(typ)(context, builder, value=value)
        array.meminfo = cgutils.get_null_value(array.meminfo.type)
        return array._getvalue()
    if isinstance(typ, types.BaseTuple):
        for i, member in enumerate(typ):
            value = builder.insert_value(
                value, _borrowed(context, builder, member,
                                 builder.extract_value(value, i)), i)
        return value
    return value


def _holds_only_arrays_and_numbers(typ):
    if isinstance(typ, types.BaseTuple):
        return all(_holds_only_arrays_and_numbers(member) for member in typ)
    return isinstance(typ, (types.Array, types.Number, types.Boolean))


@intrinsic
def stash(typingctx, value):
    """A pointer to a copy of ``value`` on the calling kernel's stack, valid until that
    kernel returns; read it back with :func:`unstash`.

    ``value`` is a tuple of arrays, numbers and records of them. The copy borrows its
    arrays without counting references (see :func:`_borrowed`): they must stay alive as
    long as the pointer is used, which the kernel's own arguments do, and what
    :func:`unstash` returns must not outlive them.
    """
    if not _holds_only_arrays_and_numbers(value):
        return None

    def codegen(context, builder, signature, llvm_args):
        pointer = cgutils.alloca_once(builder, context.get_data_type(value))
        context.pack_value(builder, value, _borrowed(context, builder, value, llvm_args[0]),
                           pointer)
        return pointer

    return types.CPointer(value)(value), codegen


@intrinsic
def unstash(typingctx, pointer):
    """The value that :func:`stash` stored at ``pointer`` (its arrays borrowed)."""
    if not isinstance(pointer, types.CPointer):
        return None

    def codegen(context, builder, signature, llvm_args):
        return context.unpack_value(builder, pointer.dtype, llvm_args[0])

    return pointer.dtype(pointer), codegen


@intrinsic
def erase_type(typingctx, pointer):
    """``pointer`` as a ``voidptr``, for :func:`call_compiled` to pass where the callee
    takes a typed pointer."""
    if not isinstance(pointer, types.CPointer):
        return None

    def codegen(context, builder, signature, llvm_args):
        return builder.bitcast(llvm_args[0], context.get_value_type(types.voidptr))

    return types.voidptr(pointer), codegen


_versions = {}
_typed_addresses = {}
_stashed_addresses = {}
#: While :func:`recording_compiles` runs: the compiles the lookups were asked for.
_recorded = None
#: Called with ``(dispatcher, argument types)`` before a lookup compiles (see
#: :func:`set_before_compile`).
_before_compile = None


def set_before_compile(hook):
    """Have the lookups call ``hook(dispatcher, argument_types)`` before each compile they
    start (None: no hook). :mod:`numlstm.nn.background_compile` waits there for a kernel
    that another process is compiling into numba's cache."""
    global _before_compile
    _before_compile = hook


def _compile(dispatcher, argument_types):
    if _before_compile is not None and argument_types not in dispatcher.overloads:
        _before_compile(dispatcher, argument_types)
    dispatcher.compile(argument_types)


def _do_nothing(*arguments):
    return None


@contextlib.contextmanager
def recording_compiles():
    """Within this context the lookups below compile nothing and their kernels do nothing:
    each lookup appends ``(dispatcher, argument types)`` to the list this yields, returns
    the address 0 or a function that ignores its arguments, and may keep those in the
    lookup tables.

    So running a layer's or a network's code within it lists, in order, the kernels that
    code needs compiled, without computing anything (its outputs are left as allocated).
    For a process that exits afterwards (see :mod:`numlstm.nn.background_compile`): the
    lookups keep returning the dummies there.
    """
    global _recorded
    _recorded = requests = []
    try:
        yield requests
    finally:
        _recorded = None


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
    if _recorded is not None:
        _recorded.append((dispatcher, tuple(dispatcher.typeof_pyval(value)
                                            for value in arguments)))
        return _do_nothing, 0, types.none
    key = _lookup_key(dispatcher, arguments)
    version = _versions.get(key)
    if version is None:
        argument_types = tuple(dispatcher.typeof_pyval(value) for value in arguments)
        _compile(dispatcher, argument_types)  # the return type is the callee's to infer
        result = dispatcher.overloads[argument_types]
        address = None
        if result.signature.return_type == types.none:
            address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        version = _versions[key] = (result.entry_point, address,
                                    result.signature.return_type)
    return version


def compiled_address_for(dispatcher, argument_types):
    """Address of ``dispatcher`` compiled for the numba types ``argument_types`` (a tuple),
    for callees whose arguments Python cannot pass (a pointer, say); see
    :func:`compiled_address`."""
    if _recorded is not None:
        _recorded.append((dispatcher, argument_types))
        return 0
    key = (dispatcher, argument_types)
    address = _typed_addresses.get(key)
    if address is None:
        _compile(dispatcher, argument_types)
        result = dispatcher.overloads[argument_types]
        if result.signature.return_type != types.none:
            raise TypeError(f"{dispatcher.py_func.__name__} must return nothing to be "
                            f"called through its address, not "
                            f"{result.signature.return_type}")
        address = _typed_addresses[key] = result.library.get_pointer_to_function(
            result.fndesc.llvm_func_name)
    return address


def stashed_address(dispatcher, stashed, other_types):
    """Address of ``dispatcher`` compiled for a pointer to the tuple ``stashed`` (as
    :func:`stash` stores it), then arguments of the numba types ``other_types``.

    Looked up by the type fingerprint of ``stashed``, as :func:`compiled_address` is.
    """
    key = (_lookup_key(dispatcher, stashed), other_types)
    address = _stashed_addresses.get(key)
    if address is None:
        pointee = types.BaseTuple.from_types([dispatcher.typeof_pyval(value)
                                              for value in stashed])
        address = _stashed_addresses[key] = compiled_address_for(
            dispatcher, (types.CPointer(pointee),) + tuple(other_types))
    return address


def compiled_address(dispatcher, arguments):
    """Address of ``dispatcher`` compiled for the types of ``arguments`` (a tuple).

    Compiles it (or loads it from numba's cache) on first use for those types. The
    lookup costs about 2 us for nine arguments of which four are records of arrays.

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
