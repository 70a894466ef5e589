"""Kernels of a training step beyond the recurrent layers, for the device-resident trainer.

The ``numba.cuda`` twins of the NumPy training step
(:meth:`numlstm.nn.network.LSTMNetwork.loss_and_gradient`, :mod:`numlstm.nn.losses`,
:mod:`numlstm.training.optimizers`) that :mod:`numlstm.training.device_trainer` launches:
batch gathers, the bias sums, the dense head's feature layout, the losses and their
gradients, one-block float64 reductions (sums of squares, loss sums, finiteness), gradient
clipping, and the Adam and SGD updates. They hold no estimator logic.

A step keeps its scalars in a float64 *status vector* on the device (layout below); the
kernels read and write it there, so a step needs one read-back, at its end.

Launch configurations
---------------------
No kernel here uses more than one dimension of grid or block.

* per-element kernels (``gather_rows*``, :func:`combine_bias`, :func:`states_to_features`,
  :func:`features_to_states`, :func:`loss_rows`, :func:`pool_steps`,
  :func:`pool_steps_backward`): at least one thread per element (row for
  :func:`loss_rows`, row and unit for the pooling kernels);
* grid-stride kernels over a whole parameter vector (:func:`multiply`, :func:`copy_if`,
  :func:`clip_scale`, :func:`axpy_masked`, :func:`adam`, :func:`sgd`): any 1-D grid, a
  thread steps by the grid size;
* one-block reductions (:func:`sum_squares`, :func:`sum_scaled`, :func:`all_finite`):
  exactly one block of :data:`REDUCE_THREADS` threads, with a float64 shared array of that
  many slots;
* scalar kernels on the status vector (:func:`finish_loss`, :func:`clip_start`,
  :func:`clip_next`): one thread.

Float types follow the arguments (numba compiles one version per argument types); sums of
squares and losses are accumulated in float64, as NumPy does.
"""

import math

import numpy as np
from numba import cuda

from .simulator import simulator_active

__all__ = ["CLIP_NORM", "CLIP_SCALE", "CLIP_SQUARES", "DATA_LOSS", "GRAD_NORM",
           "GRAD_SQUARES", "LOSS", "LOSS_CODES", "N_REPORTED", "N_STATUS", "PARAMS_FINITE",
           "REDUCE_THREADS", "SQUARES", "STEP_OK", "adam", "all_finite", "axpy_masked",
           "block_total", "clip_next", "clip_scale", "clip_start", "combine_bias",
           "copy_if", "features_to_states", "finish_loss", "gather_rows1", "gather_rows2",
           "gather_rows3", "loss_rows", "multiply", "pool_steps", "pool_steps_backward",
           "sgd", "states_to_features",
           "sum_scaled", "sum_squares"]

#: Threads of the one-block reductions (and slots of their shared array). The simulator
#: runs each thread as a Python thread: fewer there.
REDUCE_THREADS = 32 if simulator_active() else 256

# Layout of the status vector (float64) of a step. The first ``N_REPORTED`` entries are
# all that comes back to the host per step.
#: The batch loss with the L2 penalty, at the weights before the step.
LOSS = 0
#: The gradient's norm (before clipping).
GRAD_NORM = 1
#: 1.0 when the loss and the gradient norm are finite (the update is then applied).
STEP_OK = 2
#: 1.0 when every parameter is finite after the update.
PARAMS_FINITE = 3
N_REPORTED = 4
#: Scratch of a step: the data loss, the sum of squares of the penalised weights and of
#: the gradient, and the clipping loop's norm, scale and sum of squares.
DATA_LOSS, SQUARES, GRAD_SQUARES, CLIP_NORM, CLIP_SCALE, CLIP_SQUARES = 4, 5, 6, 7, 8, 9
N_STATUS = 10

#: Loss codes of :func:`loss_rows`, by the names of :data:`numlstm.nn.losses.LOSS_FUNCTIONS`.
LOSS_CODES = {"squared_error": 0, "binary_log_loss": 1, "log_loss": 2}


# ----------------------------------------------------------------- batches and layout
@cuda.jit
def gather_rows3(src, idx, dst):
    """``dst[b, t, f] = src[idx[b], t, f]`` for the ``dst.shape[1]`` first steps; one thread
    per element of ``dst``."""
    i = cuda.grid(1)
    batch, n_steps, width = dst.shape
    if i >= batch * n_steps * width:
        return
    b = i // (n_steps * width)
    t = (i // width) % n_steps
    f = i % width
    dst[b, t, f] = src[idx[b], t, f]


@cuda.jit
def gather_rows2(src, idx, dst):
    """``dst[b, f] = src[idx[b], f]``; one thread per element of ``dst``."""
    i = cuda.grid(1)
    batch, width = dst.shape
    if i >= batch * width:
        return
    dst[i // width, i % width] = src[idx[i // width], i % width]


@cuda.jit
def gather_rows1(src, idx, dst):
    """``dst[b] = src[idx[b]]``; one thread per element of ``dst``."""
    i = cuda.grid(1)
    if i < dst.shape[0]:
        dst[i] = src[idx[i]]


@cuda.jit
def combine_bias(b_ih, b_hh, bias, bias_hn, n_summed, write_hn):
    """``bias = b_ih + b_hh`` on the first ``n_summed`` columns, ``b_ih`` after them; with
    ``write_hn`` the columns after them of ``b_hh`` go to ``bias_hn`` (the GRU's ``b_hn``).
    One thread per element of ``bias`` (D, G*H)."""
    i = cuda.grid(1)
    n_dirs, width = bias.shape
    if i >= n_dirs * width:
        return
    d = i // width
    c = i % width
    if c < n_summed:
        bias[d, c] = b_ih[d, c] + b_hh[d, c]
    else:
        bias[d, c] = b_ih[d, c]
        if write_hn:
            bias_hn[d, c - n_summed] = b_hh[d, c]


@cuda.jit
def multiply(a, b, out):
    """``out = a * b`` elementwise on flat arrays (dropout masks); grid-stride."""
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = a[i] * b[i]


@cuda.jit(device=True)
def feature_of_thread(i, states):
    """``(b, c, d, j)``: thread ``i``'s feature ``c`` of row ``b``, which is unit ``j`` of
    direction ``d`` in (D, B, R) ``states``; ``b = -1`` for a thread past the end."""
    n_dirs, batch, size = states.shape
    if i >= n_dirs * batch * size:
        return -1, 0, 0, 0
    c = i % (n_dirs * size)
    return i // (n_dirs * size), c, c // size, c % size


@cuda.jit
def states_to_features(h, feats):
    """``feats[b, d*R + j] = h[d, b, j]``: the final states of both directions side by side.
    One thread per element."""
    b, c, d, j = feature_of_thread(cuda.grid(1), h)
    if b >= 0:
        feats[b, c] = h[d, b, j]


@cuda.jit
def features_to_states(d_feats, d_h):
    """The reverse of :func:`states_to_features`, for the gradients."""
    b, c, d, j = feature_of_thread(cuda.grid(1), d_h)
    if b >= 0:
        d_h[d, b, j] = d_feats[b, c]


@cuda.jit(device=True)
def row_and_unit_of_thread(i, steps):
    """``(b, j)``: thread ``i``'s row and unit of the (B, T, units) array ``steps``;
    ``b = -1`` for a thread past the end."""
    batch, _, units = steps.shape
    if i >= batch * units:
        return -1, 0
    return i // units, i % units


@cuda.jit
def pool_steps(out, lengths, with_mean, with_max, feats, argmax):
    """The pooled readouts of :func:`numlstm.nn.readout.pool` over ``lengths[b]`` steps:
    ``feats[b, j]`` the mean of unit ``j`` (when ``with_mean``), then the largest value
    (when ``with_max``; ``argmax[b, j]`` its first step). One thread per row and unit."""
    b, j = row_and_unit_of_thread(cuda.grid(1), out)
    if b < 0:
        return
    units = out.shape[2]
    n = lengths[b]
    total = 0.0
    best = out[b, 0, j]
    at = 0
    for t in range(n):
        value = out[b, t, j]
        total += value
        if value > best:
            best = value
            at = t
    column = j
    if with_mean:
        feats[b, column] = total / n
        column += units
    if with_max:
        feats[b, column] = best
        argmax[b, j] = at


@cuda.jit
def pool_steps_backward(d_feats, lengths, argmax, with_mean, with_max, d_out):
    """Gradient of :func:`pool_steps` with respect to ``out``, written to every step of
    ``d_out`` (zero at padded steps). One thread per row and unit."""
    b, j = row_and_unit_of_thread(cuda.grid(1), d_out)
    if b < 0:
        return
    n_steps, units = d_out.shape[1], d_out.shape[2]
    n = lengths[b]
    d_mean = d_feats[b, j] / n if with_mean else 0.0
    column = j + units if with_mean else j
    for t in range(n_steps):
        grad = d_mean if t < n else 0.0
        if with_max and t == argmax[b, j]:
            grad += d_feats[b, column]
        d_out[b, t, j] = grad


# ------------------------------------------------------------------------- the loss
@cuda.jit
def loss_rows(loss_code, raw, intercept, y, lengths, n_steps, sequence, divisor, row_loss,
              d_raw):
    """Per-row loss (float64) and gradient w.r.t. the raw outputs of one loss.

    Parameters
    ----------
    loss_code : int
        :data:`LOSS_CODES` code: squared error, binary log loss from logits, or softmax
        cross-entropy (:mod:`numlstm.nn.losses`).
    raw : array (n_rows, n_outputs)
        ``feats @ coef``; the intercept is added here.
    intercept : array (n_outputs,)
    y : array (n_rows, n_outputs)
    lengths : int64 array (B,)
        With ``sequence``, row ``b * n_steps + t`` counts when ``t < lengths[b]``.
    n_steps : int
    sequence : bool
    divisor : float
        Of the raw-output gradient (in the float type of ``raw``).
    row_loss : float64 array (n_rows,)
        Written (zero on the rows that do not count).
    d_raw : array (n_rows, n_outputs)
        Written (zero on the rows that do not count).

    Notes
    -----
    One thread per row.
    """
    zero = raw.dtype.type(0)
    half = raw.dtype.type(0.5)
    row = cuda.grid(1)
    n_rows, n_out = raw.shape
    if row >= n_rows:
        return
    if sequence and row % n_steps >= lengths[row // n_steps]:
        row_loss[row] = 0.0  # a padded step: no loss, no gradient
        for k in range(n_out):
            d_raw[row, k] = zero
        return
    acc = 0.0
    if loss_code == 0:  # squared_error: 0.5 * mean((raw - y)**2)
        for k in range(n_out):
            diff = (raw[row, k] + intercept[k]) - y[row, k]
            acc += np.float64(diff) * np.float64(diff)
            d_raw[row, k] = diff / divisor
    elif loss_code == 1:  # binary_log_loss from logits
        for k in range(n_out):
            r = raw[row, k] + intercept[k]
            x = np.float64(r)
            softplus = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
            acc += softplus - np.float64(y[row, k]) * x
            d_raw[row, k] = ((half + half * math.tanh(half * r)) - y[row, k]) / divisor
    else:  # log_loss: softmax cross-entropy
        top = raw[row, 0] + intercept[0]
        for k in range(1, n_out):
            top = max(top, raw[row, k] + intercept[k])
        top64 = np.float64(top)
        total = zero
        total64 = 0.0
        for k in range(n_out):
            r = raw[row, k] + intercept[k]
            total += math.exp(r - top)
            total64 += math.exp(np.float64(r) - top64)
        log_total = math.log(total64)
        for k in range(n_out):
            r = raw[row, k] + intercept[k]
            acc -= np.float64(y[row, k]) * (np.float64(r) - top64 - log_total)
            d_raw[row, k] = (math.exp(r - top) / total - y[row, k]) / divisor
    row_loss[row] = acc


# ------------------------------------------------------------- one-block reductions
@cuda.jit(device=True)
def block_total(partial, tid, value):
    """Sum of ``value`` over the block's threads, by halving in shared memory ``partial``
    (one slot a thread, :data:`REDUCE_THREADS` of them); every thread gets the total."""
    partial[tid] = value
    cuda.syncthreads()
    half = REDUCE_THREADS // 2
    while half > 0:
        if tid < half:
            partial[tid] += partial[tid + half]
        cuda.syncthreads()
        half //= 2
    return partial[0]


@cuda.jit
def sum_squares(values, mask, use_mask, status, pos, gate_pos, gate_value):
    """``status[pos] = sum(values**2)`` in float64 (over ``mask != 0`` with ``use_mask``).

    With ``gate_pos >= 0`` nothing is done unless ``status[gate_pos] > gate_value``. One
    block of :data:`REDUCE_THREADS` threads.
    """
    if gate_pos >= 0 and not status[gate_pos] > gate_value:
        return
    partial = cuda.shared.array(REDUCE_THREADS, np.float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, values.shape[0], REDUCE_THREADS):
        if not use_mask or mask[i] != 0:
            v = np.float64(values[i])
            acc += v * v
    total = block_total(partial, tid, acc)
    if tid == 0:
        status[pos] = total


@cuda.jit
def sum_scaled(values, status, pos, factor, divisor):
    """``status[pos] = factor * (sum(values) / divisor)`` in float64. One block of
    :data:`REDUCE_THREADS` threads."""
    partial = cuda.shared.array(REDUCE_THREADS, np.float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, values.shape[0], REDUCE_THREADS):
        acc += values[i]
    total = block_total(partial, tid, acc)
    if tid == 0:
        status[pos] = factor * (total / divisor)


@cuda.jit
def all_finite(values, status, pos):
    """``status[pos] = 1.0`` if every value is finite, else ``0.0``. One block of
    :data:`REDUCE_THREADS` threads."""
    partial = cuda.shared.array(REDUCE_THREADS, np.float64)
    tid = cuda.threadIdx.x
    bad = 0.0
    for i in range(tid, values.shape[0], REDUCE_THREADS):
        if not math.isfinite(values[i]):
            bad += 1.0
    total = block_total(partial, tid, bad)
    if tid == 0:
        status[pos] = 1.0 if total == 0.0 else 0.0


# ------------------------------------------------------------ status and clipping
@cuda.jit
def finish_loss(status, alpha, n_samples, penalised):
    """Loss plus L2 penalty, gradient norm, and whether both are finite (one thread)."""
    if cuda.grid(1) != 0:
        return
    loss = status[DATA_LOSS]
    if penalised:
        loss += 0.5 * alpha * status[SQUARES] / n_samples
    norm = math.sqrt(status[GRAD_SQUARES])
    status[LOSS] = loss
    status[GRAD_NORM] = norm
    status[STEP_OK] = 1.0 if math.isfinite(loss) and math.isfinite(norm) else 0.0
    status[PARAMS_FINITE] = 0.0


@cuda.jit
def clip_start(status, max_norm):
    """Clipping is on (``status[CLIP_NORM] > max_norm``) when the norm is finite and over
    the bound; the first scale is ``max_norm / norm`` (one thread)."""
    if cuda.grid(1) != 0:
        return
    norm = status[GRAD_NORM]
    if math.isfinite(norm) and norm > max_norm:
        status[CLIP_NORM] = norm
        status[CLIP_SCALE] = max_norm / norm
    else:
        status[CLIP_NORM] = -1.0


@cuda.jit
def clip_next(status, max_norm, shrink):
    """After a scaling round: the new norm, and the next (slightly shrunk) scale (one
    thread)."""
    if cuda.grid(1) != 0 or not status[CLIP_NORM] > max_norm:
        return
    norm = math.sqrt(status[CLIP_SQUARES])
    status[CLIP_NORM] = norm
    status[CLIP_SCALE] = (max_norm / norm) * shrink if norm > 0 else 0.0


@cuda.jit
def clip_scale(grads, status, max_norm):
    """``grads *= scale`` (cast to the float type, as NumPy does) while clipping is on;
    grid-stride."""
    if not status[CLIP_NORM] > max_norm:
        return
    scale = grads.dtype.type(status[CLIP_SCALE])
    for i in range(cuda.grid(1), grads.shape[0], cuda.gridsize(1)):
        grads[i] *= scale


# ---------------------------------------------------------------- parameter updates
@cuda.jit
def copy_if(src, dst, status, pos):
    """``dst = src`` when ``status[pos] != 0``; grid-stride."""
    if status[pos] == 0.0:
        return
    for i in range(cuda.grid(1), dst.shape[0], cuda.gridsize(1)):
        dst[i] = src[i]


@cuda.jit
def axpy_masked(y, a, x, mask):
    """``y[mask] += a * x[mask]``; grid-stride."""
    for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        if mask[i] != 0:
            y[i] += a * x[i]


@cuda.jit
def adam(params, grads, m, v, status, lr, b1, one_minus_b1, b2, one_minus_b2, eps):
    """One Adam update, skipped unless the step's loss and gradient were finite.

    The moments in the float type, the step in float64, as
    :class:`numlstm.training.optimizers.AdamOptimizer` computes them; ``lr`` is already
    bias-corrected, the betas and ``eps`` come in the float type. Grid-stride.
    """
    if status[STEP_OK] == 0.0:
        return
    for i in range(cuda.grid(1), params.shape[0], cuda.gridsize(1)):
        g = grads[i]
        m_i = m[i] * b1 + one_minus_b1 * g
        v_i = v[i] * b2 + one_minus_b2 * (g * g)
        m[i] = m_i
        v[i] = v_i
        update = -lr * np.float64(m_i) / np.float64(math.sqrt(v_i) + eps)
        params[i] = params.dtype.type(np.float64(params[i]) + update)


@cuda.jit
def sgd(params, grads, velocity, status, lr, mu, nesterov):
    """One momentum (or Nesterov) update, as :class:`numlstm.training.optimizers.SGDOptimizer`,
    skipped unless the step's loss and gradient were finite. Grid-stride."""
    if status[STEP_OK] == 0.0:
        return
    for i in range(cuda.grid(1), params.shape[0], cuda.gridsize(1)):
        g = grads[i]
        vel = velocity[i] * mu - lr * g
        velocity[i] = vel
        if nesterov:
            params[i] += mu * vel - lr * g
        else:
            params[i] += vel
