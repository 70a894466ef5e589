"""The CPU backend: runs layers with the ``@njit`` kernels of :mod:`numlstm.kernels.cpu`.

It splits each batch into one slice per numba thread, keeps BLAS single-threaded while
kernels that call it are in flight, and hands the kernels their arrays, grouped in the
records of :mod:`numlstm.kernels.cpu.records` (weights, inputs and outputs, caches, packed
weights, gradients).
"""

import contextlib
import os

import numba
import numpy as np

from .._utils import config as _config
from .._utils.blas_threads import single_threaded_blas
from ..kernels.cpu.indirect_call import compiled_function, stashed_address
from ..kernels.cpu.parallel_rows import slices_runner
from ..kernels.cpu.records import (BackwardIO, ForwardIO, GradientShares, LayerWeights,
                                   PackedWeights, StepGradients, TrainingCache,
                                   WeightGradients)
from .layer_spec import PLAIN_LSTM
from .workspace import NoWorkspace

__all__ = ["CPUBackend"]


# GNU OpenMP (numba's usual threading layer here) kills a forked child that starts a
# parallel region once the parent has used one. A child process (a multiprocessing "fork"
# worker, say) therefore runs the kernels on its own thread, which needs no parallel region.
_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_bounds_cache = {}


def _chunk_bounds(batch_size):
    """Batch slice of each CPU thread: at most one per thread, none too small."""
    n_threads = _thread_count()
    key = (batch_size, n_threads, _config.MIN_ROWS_PER_THREAD)
    bounds = _bounds_cache.get(key)
    if bounds is None:
        # Cached: building it costs as much as a small model's whole kernel call.
        n_chunks = max(1, min(n_threads, batch_size // _config.MIN_ROWS_PER_THREAD))
        bounds = np.linspace(0, batch_size, n_chunks + 1).round().astype(np.int64)
        bounds.flags.writeable = False
        if len(_bounds_cache) > 256:
            _bounds_cache.clear()
        _bounds_cache[key] = bounds
    return bounds


def _gradient_shares(batch_size, n_gate_cols, align):
    """How the weight gradients of a backward pass are cut
    (:class:`~numlstm.kernels.cpu.records.GradientShares`): into ``GRADIENT_ROW_BLOCKS``
    blocks of rows (one block for a small batch), whatever the thread count, and each
    block into enough runs of whole panels of ``align`` gate columns for every thread."""
    n_threads = _thread_count()
    key = ("shares", batch_size, n_gate_cols, align, n_threads, _config.MIN_ROWS_PER_THREAD,
           _config.GRADIENT_ROW_BLOCKS)
    shares = _bounds_cache.get(key)
    if shares is None:
        n_blocks = _config.GRADIENT_ROW_BLOCKS
        if batch_size < n_blocks * _config.MIN_ROWS_PER_THREAD:
            n_blocks = 1
        blocks = np.linspace(0, batch_size, n_blocks + 1).round().astype(np.int64)
        n_panels = -(-n_gate_cols // align)
        n_runs = max(1, min(-(-n_threads // n_blocks), n_panels))
        panels = np.linspace(0, n_panels, n_runs + 1).round().astype(np.int64)
        columns = np.minimum(panels * align, n_gate_cols)
        bounds = np.arange(n_blocks * n_runs + 1, dtype=np.int64)
        for array in (blocks, columns, bounds):
            array.flags.writeable = False
        rows = _chunk_bounds(batch_size)
        after_sweep = n_runs == 1 and np.array_equal(rows, blocks)
        shares = GradientShares(blocks, columns, n_runs, bounds, after_sweep)
        if len(_bounds_cache) > 256:
            _bounds_cache.clear()
        _bounds_cache[key] = shares
    return shares


def _blas_guard(spec):
    """Context for a kernel call: only the projection's products still call SciPy's BLAS
    (the others use :mod:`numlstm.kernels.cpu.packed_gemm`), so only they need it
    single-threaded."""
    return single_threaded_blas() if spec.W_hr is not None else contextlib.nullcontext()


_cpu_kernels = None


def _kernels():
    """:mod:`numlstm.kernels.cpu.recurrent`, imported on first use (it loads SciPy's BLAS)."""
    global _cpu_kernels
    if _cpu_kernels is None:
        from ..kernels.cpu import recurrent

        _cpu_kernels = recurrent
    return _cpu_kernels


_placeholders = {}


def _empty(dtype, *shape):
    """An array of ``shape`` for a kernel argument that is unused (a size-0 axis) or
    written before it is read; arrays of size 0 are shared, since nothing is in them."""
    if 0 not in shape:
        return np.empty(shape, dtype)
    key = (shape, dtype)
    array = _placeholders.get(key)
    if array is None:
        if len(_placeholders) > 256:
            _placeholders.clear()
        array = _placeholders[key] = np.empty(shape, dtype)
    return array


def _packed(ws, name, n_dirs, n_k, n_cols, dtype):
    """Workspace array for a (K, N) weight matrix per direction packed by the kernels
    (:mod:`numlstm.kernels.cpu.packed_gemm`)."""
    width = _kernels().panel_width(dtype)
    return ws.get(name, (n_dirs, -(-n_cols // width), n_k, width), dtype)


def _weights(W_ih, W_hh, bias, spec, n_dirs, dtype):
    """The layer's :class:`LayerWeights`, options as the kernels take them (size-0 arrays
    when unused)."""
    bias_hn = spec.bias_hn if spec.bias_hn is not None else _empty(dtype, n_dirs, 0)
    peep = spec.peephole if spec.peephole is not None else _empty(dtype, n_dirs, 3, 0)
    W_hr = spec.W_hr if spec.W_hr is not None else _empty(dtype, n_dirs, 0, 0)
    return LayerWeights(W_ih, W_hh, bias, np.ascontiguousarray(bias_hn, dtype),
                        np.ascontiguousarray(peep, dtype), np.ascontiguousarray(W_hr, dtype))


def _numba_thread_count():
    """``numba.get_num_threads``, without its check that the thread pool is started (a
    lock, half a microsecond) once it is."""
    global _numba_thread_count
    count = numba.get_num_threads()
    try:
        from numba.np.ufunc.parallel import _get_num_threads
    except ImportError:  # pragma: no cover - numba moved it
        _numba_thread_count = numba.get_num_threads
    else:
        if _get_num_threads() == count:
            _numba_thread_count = _get_num_threads
    return count


def _is_plain_lstm(spec):
    return spec.cell == "lstm" and spec.W_hr is None and spec.peephole is None


def _forward_rows_kernel(spec):
    """The per-rows forward kernel of this layer: the plain LSTM has its own."""
    kernels = _kernels()
    return kernels.lstm_forward_rows if _is_plain_lstm(spec) else kernels.layer_forward_rows


def _backward_rows_kernels(spec):
    """The per-rows backward kernels of this layer, the sweep's and the weight
    gradients': the plain LSTM has its own."""
    kernels = _kernels()
    if _is_plain_lstm(spec):
        return kernels.lstm_backward_rows, kernels.lstm_weight_gradients
    return kernels.layer_backward_rows, kernels.layer_weight_gradients


def _thread_count():
    """numba's thread count for this thread (1 in a forked child, see above)."""
    return 1 if _forked_child else _numba_thread_count()


def _layouts(*arrays):
    """Which of these arrays are C-contiguous, as one integer: the plans' compiled kernels
    read arrays as numba typed them on the first call. (Whether an input is writeable
    changes its numba type but not how the kernel reads it.)"""
    layout = 0
    for array in arrays:
        layout = 2 * layout + (array is None or array.flags.c_contiguous)
    return layout


class _InferencePlan:
    """What repeated inference calls of one shape on one layer share: the kernel's compiled
    entry point, its scratch, the packed weights and the weights they came from.

    A small call (one step of one sequence) costs a few microseconds of arithmetic;
    looking up the compiled kernel, allocating scratch and packing the weights anew cost
    several times that.
    """

    __slots__ = ("code", "n_dirs", "out_shape", "h_shape", "c_shape", "cell_state",
                 "placeholders", "cache", "workspace", "gates_shape", "packed", "bounds",
                 "entry", "rows", "runner", "uses_blas", "weights")

    @classmethod
    def build(cls, x, lengths, W_ih, W_hh, bias, h0, c0, spec, ws):
        kernels = _kernels()
        plan = cls()
        code, n_dirs, hidden, rec_size = CPUBackend._sizes(W_ih, W_hh, spec)
        batch, n_steps, in_size = x.shape
        dtype = x.dtype
        n_gate_cols = W_ih.shape[1]
        plan.code = code
        plan.n_dirs = n_dirs
        plan.cell_state = spec.has_cell_state
        plan.out_shape = (batch, n_steps, n_dirs * rec_size)
        plan.h_shape = (n_dirs, batch, rec_size)
        plan.c_shape = (n_dirs, batch, hidden if spec.has_cell_state else 0)
        # The plain LSTM infers step by step in per-thread blocks (no gate buffer); the
        # other cells' gate buffer, (B, T, G*H), is the workspace's, taken on each call so
        # that plans of other shapes do not each keep one alive.
        plan.workspace = ws
        plan.gates_shape = (1, batch, n_steps, n_gate_cols)
        plan.cache = None
        if _is_plain_lstm(spec):
            plan.cache = TrainingCache(np.empty((1, 1, 1, n_gate_cols), dtype),
                                       *([_empty(dtype, 1, 1, 1, 0)] * 3))
        # Packs of their own, kept with the weights they came from (see PackedWeights),
        # one set per layer that its plans share: training packs into other arrays, and
        # could restore old weights (the best epoch's, say) that these would match.
        plan.packed = PackedWeights(
            _packed(ws, "inference_packed_ih", n_dirs, in_size, n_gate_cols, dtype),
            _packed(ws, "inference_packed_hh", n_dirs, rec_size, n_gate_cols, dtype),
            ws.get("inference_packed_source", (1 + W_ih.size + W_hh.size,), dtype,
                   allocate=np.zeros),
            kernels.product_addresses(dtype, gradients=False))
        plan.bounds = _chunk_bounds(batch)
        # Only the projection's products call SciPy's BLAS (see _blas_guard).
        plan.uses_blas = spec.W_hr is not None
        plan.placeholders = None
        plan.weights = None
        if spec.bias_hn is None and spec.peephole is None and spec.W_hr is None:
            plan.placeholders = _weights(W_ih, W_hh, bias, spec, n_dirs, dtype)[3:]
        args = plan._arguments(x, lengths, W_ih, W_hh, bias, h0, plan._cell_state(c0, dtype),
                               spec)
        plan.rows = stashed_address(_forward_rows_kernel(spec), args, _ROWS_TAIL)
        plan.runner = slices_runner(plan.bounds)
        plan.entry = compiled_function(kernels.layer_forward,
                                       (plan.rows, plan.runner) + args + (plan.bounds,))
        return plan

    def _cell_state(self, c0, dtype):
        """``c0``, or the zeros it stands for when it is None (a size-0 array for the
        cells without one)."""
        if c0 is not None:
            return c0
        return np.zeros(self.c_shape, dtype) if self.cell_state else _empty(dtype,
                                                                            *self.c_shape)

    def _arguments(self, x, lengths, W_ih, W_hh, bias, h0, c0, spec):
        dtype = x.dtype
        io = ForwardIO(x, lengths, h0, c0, np.empty(self.out_shape, dtype),
                       np.empty(self.h_shape, dtype), np.empty(self.c_shape, dtype))
        if self.placeholders is None:
            weights = _weights(W_ih, W_hh, bias, spec, self.n_dirs, dtype)
        else:
            # The same arrays call after call (a layer's views, its kept bias): the record
            # is kept too. Only the arrays' identity matters; their values are read anew.
            weights = self.weights
            if (weights is None or weights.W_ih is not W_ih or weights.W_hh is not W_hh
                    or weights.bias is not bias):
                weights = self.weights = LayerWeights(W_ih, W_hh, bias, *self.placeholders)
        cache = self.cache
        if cache is None:
            cache = TrainingCache(self.workspace.get("inference", self.gates_shape, dtype),
                                  *([_empty(dtype, 1, 1, 1, 0)] * 3))
        return (self.code, io, weights, cache, False, self.packed)

    def _call(self, args):
        self.entry(self.rows, self.runner, *args, self.bounds)

    def run(self, x, lengths, W_ih, W_hh, bias, h0, c0, spec):
        """The kernel on these arrays (of the shapes and kinds the plan was built for);
        returns ``out, h_n, c_n``."""
        args = self._arguments(x, lengths, W_ih, W_hh, bias, h0,
                               self._cell_state(c0, x.dtype), spec)
        if self.uses_blas:
            with single_threaded_blas():
                self._call(args)
        else:
            self._call(args)
        io = args[1]
        return io.out, io.h_n, (io.c_n if self.cell_state else None)


#: The types of what a per-rows kernel takes after its stashed arguments: the slice and
#: its rows (:func:`numlstm.kernels.cpu.parallel_rows.run_rows`).
_ROWS_TAIL = (numba.types.int64,) * 3


def _run(kernel, arguments):
    """``kernel(*arguments)`` through :func:`compiled_function`: the dispatcher would spend
    microseconds per call typing the kernels' records."""
    compiled_function(kernel, arguments)(*arguments)


class CPUBackend:
    """Runs layers with the ``@njit`` kernels of :mod:`numlstm.kernels.cpu.recurrent`.

    A batch too small to share between threads runs the per-rows kernel on the calling
    thread, without starting a parallel region.

    Every method takes the layer's cell and options as ``spec`` (a :class:`LayerSpec`;
    an LSTM without options when omitted). ``G`` is the number of gates, ``H`` the hidden
    size and ``R`` the size of the recurrent state (the projection size, else ``H``).
    """

    name = "cpu"

    @staticmethod
    def _sizes(W_ih, W_hh, spec):
        kernels = _kernels()
        code = kernels.CELL_CODES[spec.cell]
        n_dirs, n_gate_cols, _ = W_ih.shape
        return code, n_dirs, n_gate_cols // kernels.N_GATES[code], W_hh.shape[2]

    def _run_forward(self, x, lengths, W_ih, W_hh, bias, h0, c0, spec, ws):
        """The training forward pass (caches kept)."""
        kernels = _kernels()
        code, n_dirs, hidden, rec_size = self._sizes(W_ih, W_hh, spec)
        batch, n_steps, _ = x.shape
        dtype = x.dtype
        weights = _weights(W_ih, W_hh, bias, spec, n_dirs, dtype)
        if c0 is None:
            c0 = _empty(dtype, n_dirs, batch, hidden if spec.has_cell_state else 0)
        out = np.empty((batch, n_steps, n_dirs * rec_size), dtype)
        h_n = np.empty((n_dirs, batch, rec_size), dtype)
        c_n = np.empty(c0.shape, dtype)
        n_gate_cols = W_ih.shape[1]
        proj = weights.W_hr.shape[1] > 0
        gates = ws.get("gates", (n_dirs, batch, n_steps, n_gate_cols), dtype)
        h_prev = ws.get("h_prev", (n_dirs, batch, n_steps, rec_size), dtype)
        c_prev = ws.get("c_prev", (n_dirs, batch, n_steps,
                                   hidden if spec.cell in ("lstm", "gru") else 0), dtype)
        m_store = ws.get("m_store", (n_dirs, batch, n_steps, hidden if proj else 0), dtype)
        bounds = _chunk_bounds(batch)
        packed = PackedWeights(
            _packed(ws, "packed_ih", n_dirs, x.shape[2], n_gate_cols, dtype),
            _packed(ws, "packed_hh", n_dirs, rec_size, n_gate_cols, dtype),
            _empty(dtype, 0), kernels.product_addresses(dtype, gradients=False))
        io = ForwardIO(x, lengths, h0, c0, out, h_n, c_n)
        cache = TrainingCache(gates, h_prev, c_prev, m_store)
        args = (code, io, weights, cache, True, packed)
        rows = stashed_address(_forward_rows_kernel(spec), args, _ROWS_TAIL)
        with _blas_guard(spec):
            _run(kernels.layer_forward, (rows, slices_runner(bounds)) + args + (bounds,))
        if not spec.has_cell_state:
            c_n = None
        return out, h_n, c_n, (weights, cache, spec)

    def forward(self, x, lengths, W_ih, W_hh, bias, h0, c0=None, workspace=None, spec=None):
        """Forward one layer keeping caches; returns ``out, h_n, c_n, cache``.

        Parameters
        ----------
        x : ndarray (B, T, I)
        lengths : int64 ndarray (B,), each in [1, T]
        W_ih, W_hh, bias : ndarrays (D, G*H, I), (D, G*H, R), (D, G*H)
            ``bias`` is ``b_ih + b_hh`` (for the GRU's n gate, ``b_in`` alone).
        h0 : ndarray (D, B, R)
        c0 : ndarray (D, B, H) or None
            The LSTM's initial cell state (``None`` for the other cells).
        workspace : Workspace, optional
            Scratch kept between calls.
        spec : LayerSpec, optional

        Returns
        -------
        out : ndarray (B, T, D*R)
        h_n : ndarray (D, B, R)
        c_n : ndarray (D, B, H) or None
        cache : object
            Opaque; hand it to :meth:`backward`.
        """
        return self._run_forward(x, lengths, W_ih, W_hh, bias, h0, c0, spec or PLAIN_LSTM,
                                 workspace or NoWorkspace)

    def inference(self, x, lengths, W_ih, W_hh, bias, h0, c0=None, workspace=None,
                  spec=None):
        """Forward one layer without caches; returns ``out, h_n, c_n`` (see :meth:`forward`).

        Built for many small calls (streaming, a sequence or a few steps at a time): what
        calls of one shape share is prepared once and kept in ``workspace``, and so are
        the packed weights, repacked only when the weights change.
        """
        spec = spec or PLAIN_LSTM
        return self.inference_runner(x, lengths, W_ih, W_hh, bias, h0, c0, workspace,
                                     spec)(x, lengths, W_ih, W_hh, bias, h0, c0, spec)

    @staticmethod
    def inference_scope():
        """What decides an inference runner besides the arrays' shapes and layouts: the
        thread count, which sets how the batch is split."""
        return _thread_count()

    def inference_runner(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace, spec):
        """A callable ``run(x, lengths, W_ih, W_hh, bias, h0, c0, spec)`` doing
        :meth:`inference` for arrays of the shapes and memory layouts of these (a stream
        calls it again and again, without looking it up each time)."""
        ws = workspace or NoWorkspace
        batch, n_steps, in_size = x.shape
        key = (batch, n_steps, in_size, x.dtype, W_hh.shape, spec.cell,
               spec.peephole is None, spec.W_hr is None, _thread_count(),
               _layouts(x, h0, c0, lengths, W_ih, W_hh, bias))
        plans = ws.memo("inference_plans", dict)
        plan = plans.get(key)
        if plan is None:
            if len(plans) > 16:
                plans.clear()
            plan = plans[key] = _InferencePlan.build(x, lengths, W_ih, W_hh, bias, h0, c0,
                                                     spec, ws)
        return plan.run

    def backward(self, x, lengths, W_ih, W_hh, cache, d_out, d_h_n, d_c_n,
                 dW_ih, dW_hh, d_bias, workspace=None, grads=None, input_gradient=True):
        """Backward one layer; fills ``dW_ih, dW_hh, d_bias``, returns ``dx, d_h0, d_c0``.

        Parameters
        ----------
        x, lengths, W_ih, W_hh
            As given to :meth:`forward`.
        cache : object
            As returned by :meth:`forward`.
        d_out : ndarray (B, T, D*R)
        d_h_n : ndarray (D, B, R)
        d_c_n : ndarray (D, B, H) or None
        dW_ih, dW_hh, d_bias : ndarrays like ``W_ih``, ``W_hh``, ``bias``
            Written; ``d_bias`` is the gradient w.r.t. ``b_ih``.
        workspace : Workspace, optional
        grads : dict, optional
            Arrays for the gradients of the options, written when the layer has them:
            ``"bias_hh"`` (D, G*H) for the GRU (for the other cells it equals ``d_bias``),
            ``"peephole"`` (D, 3, H), ``"W_hr"`` (D, P, H).
        input_gradient : bool, default=True
            Whether to compute ``dx``; without it the pass skips the product
            ``d_gates @ W_ih`` and returns ``None`` in its place.

        Returns
        -------
        dx : ndarray (B, T, I) or None
        d_h0 : ndarray (D, B, R)
        d_c0 : ndarray (D, B, H) or None
        """
        kernels = _kernels()
        weights, caches, spec = cache
        # The forward's weights record (its options and bias), with the weights given here.
        weights = weights._replace(W_ih=W_ih, W_hh=W_hh)
        grads = grads or {}
        code, n_dirs, hidden, rec_size = self._sizes(W_ih, W_hh, spec)
        ws = workspace or NoWorkspace
        batch, n_steps, _ = x.shape
        dtype = x.dtype
        gates = caches.gates
        peep = weights.peep
        W_hr = weights.W_hr
        proj = W_hr.shape[1] > 0
        row_bounds = _chunk_bounds(batch)
        if d_c_n is None:
            d_c_n = _empty(dtype, n_dirs, batch, 0)
        # Without the input gradient the kernels get an array of no columns, of the same
        # type as ``x``: no other compiled version is needed.
        dx = np.empty_like(x) if input_gradient else _empty(dtype, batch, n_steps, 0)
        d_h0 = np.empty_like(d_h_n)
        d_c0 = np.empty_like(d_c_n)
        d_gates = ws.get("d_gates", gates.shape, dtype)
        d_rec = ws.get("d_rec", gates.shape, dtype) if spec.cell == "gru" else d_gates
        dh_store = ws.get("dh_store", (n_dirs, batch, n_steps, rec_size if proj else 0),
                          dtype)
        d_bias_hh = grads.get("bias_hh")
        if d_bias_hh is None or spec.cell != "gru":
            d_bias_hh = _empty(dtype, n_dirs, 0)
        d_peep = grads.get("peephole")
        if d_peep is None or spec.peephole is None:
            d_peep = np.empty_like(peep)
        dW_hr = grads.get("W_hr")
        if dW_hr is None or not proj:
            dW_hr = np.empty_like(W_hr)
        packed = PackedWeights(
            _packed(ws, "packed_ih_backward", n_dirs, W_ih.shape[1], x.shape[2], dtype),
            _packed(ws, "packed_hh_backward", n_dirs, W_hh.shape[1], rec_size, dtype),
            _empty(dtype, 0), kernels.product_addresses(dtype))
        io = BackwardIO(x, lengths, d_out, d_h_n, d_c_n, dx, d_h0, d_c0)
        peep_rows = ws.get("peep_rows", (n_dirs, batch, 3, peep.shape[2]), dtype)
        work = StepGradients(d_gates, d_rec, dh_store, peep_rows)
        weight_grads = WeightGradients(dW_ih, dW_hh, d_bias, d_bias_hh, d_peep, dW_hr)
        shares = _gradient_shares(batch, W_hh.shape[1], packed.hh.shape[3])
        n_blocks = shares.blocks.shape[0] - 1
        if n_blocks == 1:
            # One block writes the gradients themselves.
            partials = WeightGradients._make(grad[None] for grad in weight_grads)
        else:
            partials = WeightGradients._make(
                ws.get("partial_" + name, (n_blocks,) + like.shape, dtype)
                for name, like in zip(("W_ih", "W_hh", "bias", "bias_hh", "peephole", "W_hr"),
                                      weight_grads))
        # The kernels' arguments end with the address of the gradients' kernel, which the
        # sweep's calls when it sums its own share (only the type counts here).
        arguments = (code, io, weights, caches, work, packed, partials, shares, 0)
        kernel_addresses = tuple(stashed_address(kernel, arguments, _ROWS_TAIL)
                                 for kernel in _backward_rows_kernels(spec))
        runners = (slices_runner(row_bounds), slices_runner(shares.bounds))
        with _blas_guard(spec):
            _run(kernels.layer_backward, (kernel_addresses, runners, code, io, weights, caches,
                                          work, packed, weight_grads, partials, row_bounds,
                                          shares))
        if not spec.has_cell_state:
            d_c0 = None
        return (dx if input_gradient else None), d_h0, d_c0
