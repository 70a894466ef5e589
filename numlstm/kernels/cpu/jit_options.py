"""Compiler options of the CPU kernels.

The per-row cell loops (gate math of one sequence and one step) read and write several
rows of different arrays. Without knowing that those rows never overlap, LLVM guards each
vectorised loop with runtime overlap checks between every written and every read row,
over a hundred comparisons per call, and on rows shorter than its vector loop it falls
back to scalar code. Compiled with ``noalias`` (C's ``restrict``) the loops carry no
checks: measured 4-5x faster at H=16-32 and 2.6x at H=128 for the LSTM's backward row.

numba has the flag (its parallel gufuncs use it) but its ``@njit`` decorator does not
accept it; :func:`row_options` registers the option for the CPU target when this numba
version has the flag, and otherwise leaves the kernels as they were (correct, slower).
Only functions whose array arguments never overlap in memory may use it.

The cell loops ask for 512-bit vectors (:func:`wide_vectors`). On CPUs with AVX-512, LLVM
vectorises with 256-bit vectors unless told otherwise, because 512-bit instructions can
lower the clock of some Intel cores; but the product tiles of
:mod:`numlstm.kernels.cpu.packed_gemm` use 512-bit registers throughout each sweep anyway,
so the cell loops between them lose nothing by using them too. Each element is computed
as before, bit for bit. On one core of an Intel Xeon, the LSTM's inference cell over 32
rows of 128 units went from 8.8 to 7.3-7.9 us, and a whole inference pass became 12%
faster at 32 units (B=32, T=50) and 2-5% at 64-256 units; training did not change
beyond the noise of the measurement.

Private kernels that only other kernels call (by name, or through their address) are
compiled without the two wrappers numba adds to every function for calls from Python and
from C, which convert each argument one by one: for kernels that take records of arrays,
building and compiling those wrappers cost a first fit more than a second. Such a kernel
must never be called from Python (numba's dispatcher would jump to the missing wrapper),
so the kernels that tests or users may call keep their wrappers.
"""

from numba import types
from numba.extending import intrinsic

__all__ = ["INNER_KERNEL_OPTIONS", "KERNEL_OPTIONS", "ROW_OPTIONS", "row_options",
           "wide_vectors"]


def _register_noalias():
    try:
        from numba.core.compiler import Flags
        from numba.core.cpu import CPUTargetOptions
        from numba.core.options import TargetOptions
    except ImportError:  # pragma: no cover - numba moved its internals
        return False
    if not hasattr(Flags, "noalias"):  # pragma: no cover
        return False
    mapping = getattr(CPUTargetOptions, "noalias", None)
    if mapping is None:
        CPUTargetOptions.noalias = TargetOptions.Mapping("noalias")
    elif not isinstance(mapping, TargetOptions.Mapping):  # pragma: no cover
        return False
    return True


_NOALIAS = _register_noalias()


def row_options(**options):
    """``options`` plus ``noalias=True`` where numba supports it."""
    if _NOALIAS:
        options["noalias"] = True
    return options


# Fast-math without the no-NaN/no-inf assumptions: a diverging model must still show NaN.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
#: Options of every CPU kernel. error_model="numpy": division without a zero check, which
#: otherwise blocks vectorisation.
KERNEL_OPTIONS = dict(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
#: Options of the private kernels that only other kernels call (see the module docstring).
INNER_KERNEL_OPTIONS = dict(KERNEL_OPTIONS, no_cpython_wrapper=True, no_cfunc_wrapper=True)
#: Options of the per-row cell functions, whose array arguments never overlap. Without
#: fusing a product and a sum into one rounding ("contract"): a kernel that calls a row
#: function holds a copy of it, optimised again with the kernel, beside the one numba
#: compiled on its own; which copy a call runs depends on whether the kernel was compiled
#: in this process or loaded from numba's cache, and the two fused different pairs. On an
#: AMD EPYC (Zen 4) a float64 LSTM's training forward then differed in its last bit between
#: a process that compiled the kernels and one that loaded them (and from the inference
#: forward). Each operation rounded on its own, every copy computes the same bits; the
#: cell loops measured no slower (2.08 against 2.13 us for 32 rows of 32 units, float32).
ROW_OPTIONS = row_options(**dict(KERNEL_OPTIONS, fastmath=_FASTMATH - {"contract"}))


#: The LLVM function attribute that sets the vector width the loop vectoriser aims for.
_WIDE_VECTORS_ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorise the calling function's loops with 512-bit vectors where the CPU
    has them (see the module docstring); a no-op elsewhere. Call it first in the
    function; only loops over independent elements should use it, since with fast-math
    a wider vector changes the order of a reduction's sums."""

    def codegen(context, builder, signature, args):
        # llvmlite lists the attributes it knows by name; a string attribute goes into
        # the set as the text LLVM reads.
        set.add(builder.function.attributes, _WIDE_VECTORS_ATTRIBUTE)
        return context.get_dummy_value()

    return types.none(), codegen
