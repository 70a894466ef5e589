"""Flat views of C-contiguous arrays inside the CPU kernels, built directly.

numba's ``reshape`` and ``view`` are general overloads: each combination of dimensions and
types a kernel uses compiles its own version, with shape checks and error messages, the
first time a process meets it (about 0.3 s for the packed-weights check alone). The
kernels only ever need a C-contiguous array as one row of its elements, or of their bits,
which these build from the array's data pointer and size.
"""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["borrowed", "flat", "flat_bits"]

_BITS = {types.float32: types.int32, types.float64: types.int64}


def _flat_view(context, builder, array_type, array_value, view_type):
    array = context.make_array(array_type)(context, builder, value=array_value)
    view = context.make_array(view_type)(context, builder)
    element = context.get_data_type(view_type.dtype)
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(element))
    # The view shares the array's memory manager and takes a reference of its own, so
    # it may outlive the array like any numba view (a borrowed array's is null: nothing
    # is counted).
    context.populate_array(
        view, data=builder.bitcast(array.data, element.as_pointer()),
        shape=cgutils.pack_array(builder, [array.nitems]),
        strides=cgutils.pack_array(builder, [itemsize]),
        itemsize=itemsize, meminfo=array.meminfo, parent=array.parent)
    context.nrt.incref(builder, array_type, array_value)
    return view._getvalue()


@intrinsic
def flat(typingctx, array):
    """The elements of the C-contiguous ``array`` as a 1-D array (a view)."""
    if not isinstance(array, types.Array) or array.layout != "C":
        return None
    view_type = types.Array(array.dtype, 1, "C")

    def codegen(context, builder, signature, args):
        return _flat_view(context, builder, array, args[0], view_type)

    return view_type(array), codegen


@intrinsic
def flat_bits(typingctx, array):
    """The bits of the C-contiguous float ``array``'s elements as a 1-D array of integers
    of the same width (a view)."""
    if (not isinstance(array, types.Array) or array.layout != "C"
            or array.dtype not in _BITS):
        return None
    view_type = types.Array(_BITS[array.dtype], 1, "C")

    def codegen(context, builder, signature, args):
        return _flat_view(context, builder, array, args[0], view_type)

    return view_type(array), codegen


@intrinsic
def borrowed(typingctx, array):
    """``array`` without its reference count: the same data, shape and strides, and no
    memory manager, so that the views a loop takes of it (a row per sequence and step)
    count no references. Counting them is an atomic add and subtract on a count that
    every thread's views share, so its cache line travels between the cores. Only for
    an array that outlives every use of the result (an argument of the calling kernel)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(array)(context, builder, value=args[0])
        result = context.make_array(array)(context, builder)
        context.populate_array(
            result, data=source.data, shape=source.shape, strides=source.strides,
            itemsize=source.itemsize, meminfo=None, parent=None)
        return result._getvalue()

    return array(array), codegen
