"""The device-resident trainer: a training step with everything on the GPU, and its host drivers.

The host side of the ``numba.cuda`` twin of the NumPy training step of the estimators
(:meth:`numlstm.nn.network.LSTMNetwork.loss_and_gradient`, :mod:`numlstm.nn.losses`,
:mod:`numlstm.training.optimizers`), for a fit whose data, weights, gradients and optimizer state
live on the GPU from the start of ``fit`` to its end. Three layers, bottom up:

* the kernels of :mod:`numlstm.kernels.cuda.training_ops` (batch gather, dense-head
  layout, losses and their gradients, L2 penalty, gradient norm and clipping, Adam and SGD
  updates, finiteness checks) and the matrix product and column sums of
  :mod:`numlstm.kernels.cuda`; they hold no estimator logic;
* host drivers that launch them on device arrays (``head_forward``, ``loss_and_gradient``,
  ``head_backward``, ``sum_of_squares``, ``clip_grad_norm``, ``adam_update``,
  ``sgd_update``), each the twin of a NumPy function and tested against it;
* :class:`DeviceTrainer`, which runs one optimizer step per call on device arrays. The
  estimators never see it directly: :func:`numlstm.training.trainer.make_trainer` picks it for
  ``device="cuda"``.

What crosses the bus
--------------------
Once per ``fit``/``partial_fit`` call: the standardised training data, the encoded
targets and the lengths (host to device); the parameters and the optimizer state (host to
device at the start, back at the end). Per optimizer step: the batch's row indices (host
to device) and one small status vector (loss, gradient norm, two finiteness flags; device
to host), read once at the end of the step. Dropout masks (``dropout > 0``) are drawn on
the host from the layer's own random stream, so that a GPU fit draws the same masks as a
CPU fit, and go to the device each step. The best-epoch and last-finite weight snapshots
are device-to-device copies. The weights come back to the host NumPy arrays at the end
of the call, when a checkpoint is written, and before each early-stopping validation
score (which runs the host-array predict path).

Numerics follow the NumPy step operation by operation in the network's float type (the
losses and all sums of squares in float64, as NumPy does), so a float64 GPU fit matches
the CPU fit to rounding (sums are accumulated in a different order).
"""

import numpy as np
from numba import cuda

from .._utils import config as _config
from .._utils.memory import check_fits
from ..kernels.cuda import training_ops as _ops
from ..kernels.cuda.reductions import fill as _fill
from ..kernels.cuda.simulator import simulator_active as _simulator_active
# The status vector's layout (the first _N_REPORTED entries come back to the host).
from ..kernels.cuda.training_ops import CLIP_NORM as _CLIP_NORM
from ..kernels.cuda.training_ops import CLIP_SQUARES as _CLIP_SQUARES
from ..kernels.cuda.training_ops import DATA_LOSS as _DATA_LOSS
# GRAD_NORM is part of this module's status layout, which callers read from here.
from ..kernels.cuda.training_ops import GRAD_NORM, LOSS, PARAMS_FINITE, STEP_OK  # noqa: F401
from ..kernels.cuda.training_ops import GRAD_SQUARES as _GRAD_SQUARES
from ..kernels.cuda.training_ops import N_REPORTED as _N_REPORTED
from ..kernels.cuda.training_ops import N_STATUS as _N_STATUS
from ..kernels.cuda.training_ops import SQUARES as _SQUARES
from ..kernels.cuda.training_ops import finish_loss as _finish_loss
from ..nn.readout import readout_width
from ..nn.cuda_backend import _cdiv, _column_sums_into, _configured, _flat, _kernels, _Mat, _matmul

__all__ = ["DeviceTrainer", "adam_update", "clip_grad_norm", "head_backward",
           "head_forward", "loss_and_gradient", "sgd_update", "sum_of_squares"]

#: Threads per block of the elementwise kernels. The simulator runs each thread as a
#: Python thread: fewer there.
_BLOCK = 32 if _simulator_active() else _config.CUDA_THREADS_PER_BLOCK
#: Most blocks of a grid-stride launch over a parameter vector: enough to fill a GPU.
_MAX_BLOCKS = 1 if _simulator_active() else 1024

#  Rounds of the exact clipping loop of :func:`numlstm.training.optimizers.clip_grad_norm` run on
# the  device (each a no-op once the norm is within the bound; the first almost always is).
_CLIP_ROUNDS = 3


# ------------------------------------------------------------------------ host drivers
def _reduce(kernel, *args):
    """``kernel`` on the one block of :data:`numlstm.kernels.cuda.training_ops.REDUCE_THREADS`
    threads that the one-block reductions expect."""
    _configured(kernel, 1, _ops.REDUCE_THREADS)(*args)


def _launch(kernel, n, *args):
    """``kernel`` on a 1-D grid of at least ``n`` threads (nothing when ``n`` is 0)."""
    if n:
        _configured(kernel, _cdiv(n, _BLOCK), _BLOCK)(*args)


def _launch_vector(kernel, n, *args):
    """A grid-stride ``kernel`` over ``n`` elements, on at most ``_MAX_BLOCKS`` blocks."""
    if n:
        _configured(kernel, min(_cdiv(n, _BLOCK), _MAX_BLOCKS), _BLOCK)(*args)


def _zero(a):
    """Set the contiguous device array ``a`` to zero on the device (no host transfer)."""
    _launch_vector(_fill, a.size, _flat(a), a.dtype.type(0))
    return a


def _device_zeros(shape, dtype):
    return _zero(cuda.device_array(shape, dtype))


def new_status():
    """A zeroed device status vector (float64) for the drivers below."""
    return _device_zeros(_N_STATUS, np.float64)


def head_forward(kern, feats, coef, raw):
    """``raw = feats @ coef`` (the intercept is added by :func:`loss_and_gradient`).

    Parameters
    ----------
    kern : kernels of :func:`numlstm.nn.cuda_backend._kernels` for the float type
    feats : device array (n_rows, F)
    coef : device array (F, n_outputs)
    raw : device array (n_rows, n_outputs), written
    """
    n_rows, width = feats.shape
    n_out = coef.shape[1]
    _matmul(kern, n_rows, n_out, width, _Mat(_flat(feats), width), _Mat(_flat(coef), n_out),
            _Mat(_flat(raw), n_out))


def loss_and_gradient(loss, raw, intercept, y, lengths, n_steps, sequence, n_valid, status,
                      row_loss, d_raw):
    """Loss of :data:`numlstm.nn.losses.LOSS_FUNCTIONS` and its gradient w.r.t. the raw outputs.

    Parameters
    ----------
    loss : {"squared_error", "binary_log_loss", "log_loss"}
    raw : device array (n_rows, n_outputs)
        ``feats @ coef`` (without the intercept).
    intercept : device array (n_outputs,)
    y : device array (n_rows, n_outputs)
    lengths : device int64 array (B,)
        Read with ``sequence`` only: row ``b * n_steps + t`` counts when ``t < lengths[b]``.
    n_steps : int
    sequence : bool
    n_valid : int
        Number of rows that count (``n_rows`` without ``sequence``).
    status : device float64 array
        ``status[_DATA_LOSS]`` receives the loss.
    row_loss : device float64 array (n_rows,)
        Scratch.
    d_raw : device array (n_rows, n_outputs), written
        Zero on the rows that do not count.
    """
    n_rows, n_out = raw.shape
    dtype = raw.dtype
    if loss == "squared_error":
        divisor, factor, over = n_valid * n_out, 0.5, n_valid * n_out
    else:
        divisor, factor, over = n_valid, 1.0, n_valid
    _launch(_ops.loss_rows, n_rows, _ops.LOSS_CODES[loss], raw, intercept, y, lengths,
            n_steps, bool(sequence), dtype.type(divisor), row_loss, d_raw)
    _reduce(_ops.sum_scaled, row_loss, status, _DATA_LOSS, factor, float(over))


def head_backward(kern, feats, d_raw, coef, coef_grad, intercept_grad, d_feats):
    """Gradients of the dense layer and of its input.

    ``coef_grad = feats.T @ d_raw``, ``intercept_grad = d_raw.sum(axis=0)``,
    ``d_feats = d_raw @ coef.T`` (all device arrays, written).
    """
    n_rows, width = feats.shape
    n_out = coef.shape[1]
    _matmul(kern, width, n_out, n_rows, _Mat(_flat(feats), width, trans=True),
            _Mat(_flat(d_raw), n_out), _Mat(_flat(coef_grad), n_out))
    _column_sums_into(kern, _flat(d_raw), n_rows, n_out, intercept_grad)
    _matmul(kern, n_rows, width, n_out, _Mat(_flat(d_raw), n_out),
            _Mat(_flat(coef), n_out, trans=True), _Mat(_flat(d_feats), width))


def sum_of_squares(values, status, pos, mask=None):
    """``status[pos] = sum(values[mask] ** 2)`` in float64 (all values without a mask)."""
    use_mask = mask is not None
    _reduce(_ops.sum_squares, values, mask if use_mask else values, use_mask, status, pos, -1,
            0.0)


def clip_grad_norm(grads, status, max_norm):
    """Scale ``grads`` so that their norm is at most ``max_norm``, as
    :func:`numlstm.training.optimizers.clip_grad_norm` does, reading the norm from
    ``status[GRAD_NORM]`` (nothing happens when it is not finite or within the bound)."""
    shrink = 1.0 - 4.0 * float(np.finfo(grads.dtype).eps)
    max_norm = float(max_norm)
    _configured(_ops.clip_start, 1, 1)(status, max_norm)
    for _ in range(_CLIP_ROUNDS):
        _launch_vector(_ops.clip_scale, grads.shape[0], grads, status, max_norm)
        _reduce(_ops.sum_squares, grads, grads, False, status, _CLIP_SQUARES, _CLIP_NORM,
                max_norm)
        _configured(_ops.clip_next, 1, 1)(status, max_norm, shrink)


def adam_update(params, grads, m, v, status, learning_rate, beta_1, beta_2, epsilon):
    """One Adam step in place (``learning_rate`` already bias-corrected), skipped unless
    ``status[STEP_OK]``."""
    nbt = params.dtype.type
    _launch_vector(_ops.adam, params.shape[0], params, grads, m, v, status, float(learning_rate),
                   nbt(beta_1), nbt(1.0 - beta_1), nbt(beta_2), nbt(1.0 - beta_2),
                   nbt(epsilon))


def sgd_update(params, grads, velocity, status, learning_rate, momentum, nesterov):
    """One momentum SGD step in place, skipped unless ``status[STEP_OK]``."""
    nbt = params.dtype.type
    _launch_vector(_ops.sgd, params.shape[0], params, grads, velocity, status, nbt(learning_rate),
                   nbt(momentum), bool(nesterov))


# ------------------------------------------------------------------ the device trainer
class _DeviceSnapshot:
    """A copy of the parameter vector kept on the device (the best epoch's weights).

    It pickles as a plain host NumPy array, so a checkpoint holding it loads anywhere.
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return (np.array, (self.array.copy_to_host(),))


class DeviceTrainer:
    """Optimizer steps of an :class:`~numlstm.nn.network.LSTMNetwork` with everything on the GPU.

    Built by :func:`numlstm.training.trainer.make_trainer` for one ``fit``/``partial_fit`` call of
    a ``device="cuda"`` estimator; same methods as :class:`numlstm.training.trainer.HostTrainer`.

    Parameters
    ----------
    network : LSTMNetwork
        Its host arrays are read now and written by :meth:`sync_to_host`.
    optimizer : AdamOptimizer or SGDOptimizer
        Its moments or velocities are read now and written by :meth:`sync_to_host`; its
        step counter and learning rate stay on the host object.
    X : ndarray (N, T, I)
        Standardised training sequences (network dtype).
    Y : ndarray (N, n_outputs) or (N, T, n_outputs)
        Encoded targets (network dtype).
    lengths : int ndarray (N,) or None
    alpha : float
        L2 penalty.
    clip_grad_norm : float or None
    """

    def __init__(self, network, optimizer, X, Y, lengths, *, alpha, clip_grad_norm):
        from .optimizers import AdamOptimizer, SGDOptimizer

        lstm = network.lstm
        self.network = network
        self.optimizer = optimizer
        self.dtype = lstm.dtype
        self.alpha = float(alpha)
        self.max_norm = clip_grad_norm
        self.backend = lstm._backend
        self.kern = _kernels(self.dtype.name, *self.backend.tiling)
        self.n_steps = X.shape[1]
        self.lengths = lengths  # host copy: batch sizes and step counts need no transfer
        self.sequence = network.sequence_output
        self.n_outputs = Y.shape[-1]
        self._check_device_memory(X, Y, network.params, optimizer)
        # The data of the whole call go over once.
        self.X = cuda.to_device(np.ascontiguousarray(X, self.dtype))
        self.Y = cuda.to_device(np.ascontiguousarray(Y, self.dtype))
        full = np.full(X.shape[0], X.shape[1], np.int64) if lengths is None else lengths
        self.L = cuda.to_device(np.ascontiguousarray(full, np.int64))
        # One vector for every parameter (recurrent, then coef_, then intercept_), and one
        # for the gradients: the penalty, the norm, the clipping, the update and the
        # snapshots are one launch each.
        host = network.params
        self._sizes = [p.size for p in host]
        self.params = cuda.to_device(np.concatenate([p.ravel() for p in host]))
        self.grads = _device_zeros(self.params.shape[0], self.dtype)
        self.views = self._views(self.params, lstm)
        self.grad_views = self._views(self.grads, lstm)
        self.mask = None
        if self.alpha:
            n_lstm, n_coef, n_int = self._sizes
            mask = np.concatenate([network._lstm_weight_mask(), np.ones(n_coef, bool),
                                   np.zeros(n_int, bool)])
            self.mask = cuda.to_device(mask.astype(np.uint8))
        if isinstance(optimizer, AdamOptimizer):
            self.moments = [self._pack(optimizer.ms), self._pack(optimizer.vs)]
        elif isinstance(optimizer, SGDOptimizer):
            self.moments = [self._pack(optimizer.velocities)]
        else:  # pragma: no cover - the estimators only build these two
            raise TypeError(f"no device update for {type(optimizer).__name__}")
        self.last_finite = cuda.device_array_like(self.params)
        self.last_finite.copy_to_device(self.params)
        self.best = None
        self.status = new_status()
        self._report = np.zeros(_N_REPORTED)
        self._buffers = {}

    def _check_device_memory(self, X, Y, params, optimizer):
        """Refuse, before uploading anything, a training set that cannot fit on the GPU.

        The data, the lengths, and the model's state: weights, gradients, the last finite
        and the best weights, the optimizer's moments and the penalty mask. A batch's
        activations come on top; the layers check those as they run.
        """
        from .optimizers import AdamOptimizer

        n_params = sum(p.size for p in params)
        n_copies = 4 + (2 if isinstance(optimizer, AdamOptimizer) else 1)
        itemsize = self.dtype.itemsize
        need = ((X.size + Y.size + n_params * n_copies) * itemsize
                + 8 * X.shape[0] + n_params)
        check_fits(need, f"training on the GPU with {X.shape[0]} sequences of "
                         f"{X.shape[1]} steps", device="cuda")

    # ------------------------------------------------------------ layout helpers
    def _pack(self, arrays):
        return cuda.to_device(np.concatenate([np.asarray(a, self.dtype).ravel()
                                              for a in arrays]))

    def _views(self, flat, lstm):
        """Device views of ``flat``: each stacked block of the layer, ``coef``, ``intercept``."""
        views = {name: flat[offset:offset + size].reshape(shape)
                 for name, shape, size, offset in lstm._layout}
        n_lstm, n_coef, n_int = self._sizes
        views["coef"] = flat[n_lstm:n_lstm + n_coef].reshape(self.network.coef_.shape)
        views["intercept"] = flat[n_lstm + n_coef:]
        return views

    def _buffer(self, name, shape, dtype=None):
        """Scratch kept between steps (a batch of the same shape allocates nothing)."""
        dtype = np.dtype(dtype or self.dtype)
        array = self._buffers.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = cuda.device_array(shape, dtype)
            self._buffers[name] = array
        return array

    # ------------------------------------------------------------------ one step
    def step(self, idx):
        """One optimizer step on the training rows ``idx``.

        Returns
        -------
        loss : float
            The batch loss (with the L2 penalty) at the weights before the step.
        problem : {None, "loss", "gradient", "weights"}
            What became NaN or infinite; the weights are then those of the last step whose
            loss and gradient were finite (as :class:`numlstm.training.trainer.HostTrainer`).
        """
        idx = np.ascontiguousarray(idx, np.int64)
        batch = idx.shape[0]
        self.network.lstm.train(True)
        if self.lengths is None:
            n_steps = self.n_steps
            n_valid = batch * n_steps if self.sequence else batch
        else:
            lb_host = self.lengths[idx]
            n_steps = int(lb_host.max())
            n_valid = int(lb_host.sum()) if self.sequence else batch
        d_idx = cuda.to_device(idx)  # the only host-to-device copy of a step (no dropout)
        xb = self._buffer("x", (batch, n_steps, self.X.shape[2]))
        _launch(_ops.gather_rows3, xb.size, self.X, d_idx, xb)
        lb = self._buffer("lengths", (batch,), np.int64)
        _launch(_ops.gather_rows1, batch, self.L, d_idx, lb)
        n_out = self.n_outputs
        if self.sequence:
            yb = self._buffer("y", (batch, n_steps, n_out))
            _launch(_ops.gather_rows3, yb.size, self.Y, d_idx, yb)
            yb = yb.reshape(batch * n_steps, n_out)
        else:
            yb = self._buffer("y", (batch, n_out))
            _launch(_ops.gather_rows2, yb.size, self.Y, d_idx, yb)

        status = self.status
        feats, layers = self._forward(xb, lb)
        # The dense layer's input dropout: drawn on the host after the layers' masks,
        # from the same stream, as a CPU fit draws it.
        feature_mask = self.network._output_dropout_mask(feats.shape)
        if feature_mask is not None:
            feature_mask = cuda.to_device(feature_mask)
            dropped = self._buffer("dropped_feats", feats.shape)
            _launch_vector(_ops.multiply, feats.size, _flat(feats), _flat(feature_mask),
                           _flat(dropped))
            feats = dropped
        n_rows = feats.shape[0]
        raw = self._buffer("raw", (n_rows, n_out))
        d_raw = self._buffer("d_raw", (n_rows, n_out))
        row_loss = self._buffer("row_loss", (n_rows,), np.float64)
        coef, intercept = self.views["coef"], self.views["intercept"]
        head_forward(self.kern, feats, coef, raw)
        loss_and_gradient(self.network.loss, raw, intercept, yb, lb, n_steps, self.sequence,
                          n_valid, status, row_loss, d_raw)
        d_feats = self._buffer("d_feats", feats.shape)
        head_backward(self.kern, feats, d_raw, coef, self.grad_views["coef"],
                      self.grad_views["intercept"], d_feats)
        if feature_mask is not None:
            _launch_vector(_ops.multiply, d_feats.size, _flat(d_feats), _flat(feature_mask),
                           _flat(d_feats))
        self._backward(layers, d_feats, batch, n_steps)

        if self.alpha:
            # Penalty from the weights before the gradient gets its share, as on the host.
            sum_of_squares(self.params, status, _SQUARES, self.mask)
            _launch_vector(_ops.axpy_masked, self.grads.shape[0], self.grads,
                           self.dtype.type(self.alpha / batch), self.params, self.mask)
        sum_of_squares(self.grads, status, _GRAD_SQUARES)
        _configured(_finish_loss, 1, 1)(status, self.alpha, float(batch), bool(self.alpha))
        if self.max_norm is not None:
            clip_grad_norm(self.grads, status, self.max_norm)
        # Snapshot and update only if the loss and the gradient were finite; the status
        # tells the host afterwards, so a step needs one read-back, at its end.
        _launch_vector(_ops.copy_if, self.params.shape[0], self.params, self.last_finite,
                       status, STEP_OK)
        self._update()
        _reduce(_ops.all_finite, self.params, status, PARAMS_FINITE)
        report = status[:_N_REPORTED].copy_to_host(self._report)
        loss = float(report[LOSS])
        if report[STEP_OK] == 0.0:
            self.params.copy_to_device(self.last_finite)
            return loss, "loss" if not np.isfinite(loss) else "gradient"
        if report[PARAMS_FINITE] == 0.0:
            self.params.copy_to_device(self.last_finite)
            return loss, "weights"
        return loss, None

    def _layer_spec(self, k, params):
        from ..nn.layer_spec import LayerSpec

        lstm = self.network.lstm
        spec = LayerSpec(lstm._kernel_cell)
        if lstm.cell == "lstm":
            if lstm._peephole:
                spec.peephole = params[f"weight_peephole_l{k}"]
            if lstm._proj_size:
                spec.W_hr = params[f"weight_hr_l{k}"]
        return spec

    def _forward(self, x, lengths):
        """The recurrent layers (training mode) and the dense layer's input."""
        lstm = self.network.lstm
        D, R, H = lstm.num_directions, lstm.state_size, lstm.hidden_size
        batch, n_steps, _ = x.shape
        views = self.views
        layers = []
        inp = x
        h_n = c_n = None
        for k in range(lstm.num_layers):
            # The layer's own random stream: the masks of a CPU fit, in the same order.
            mask = lstm._dropout_mask(k, inp.shape)
            if mask is not None:
                mask = cuda.to_device(mask)
                dropped = cuda.device_array(inp.shape, self.dtype)
                _launch_vector(_ops.multiply, inp.size, _flat(inp), _flat(mask), _flat(dropped))
                inp = dropped
            spec = self._layer_spec(k, views)
            b_ih, b_hh = views[f"bias_ih_l{k}"], views[f"bias_hh_l{k}"]
            bias = self._buffer(f"bias{k}", b_ih.shape)
            gru = lstm.cell == "gru"
            # (a one-column placeholder when unused: no zero-size device arrays)
            bias_hn = self._buffer(f"bias_hn{k}", (D, H if gru else 1))
            _launch(_ops.combine_bias, bias.size, b_ih, b_hh, bias, bias_hn,
                    2 * H if gru else b_ih.shape[1], gru)
            if gru:
                spec.bias_hn = bias_hn
            h0 = _zero(self._buffer(f"h0_{k}", (D, batch, R)))
            c0 = (_zero(self._buffer(f"c0_{k}", (D, batch, H))) if lstm.n_states == 2
                  else None)
            W_ih, W_hh = views[f"weight_ih_l{k}"], views[f"weight_hh_l{k}"]
            out, h_n, c_n, cache = self.backend.forward_device(inp, lengths, W_ih, W_hh, bias,
                                                               h0, c0, spec=spec)
            layers.append((mask, cache, W_ih, W_hh, spec))
            inp = out
        readout = self.network.readout
        if self.sequence:
            feats = inp.reshape(batch * n_steps, D * R)
        elif readout != "last":
            feats = self._buffer("feats", (batch, readout_width(readout, D * R)))
            argmax = self._buffer("argmax", (batch, D * R), np.int64)
            _launch(_ops.pool_steps, batch * D * R, inp, lengths, readout != "max",
                    readout != "mean", feats, argmax)
            self._pooled = (lengths, argmax)
        else:
            feats = self._buffer("feats", (batch, D * R))
            _launch(_ops.states_to_features, feats.size, h_n, feats)
        return feats, layers

    def _backward(self, layers, d_feats, batch, n_steps):
        """Backpropagate ``d_feats`` through the recurrent layers into the gradient vector."""
        lstm = self.network.lstm
        D, R, H = lstm.num_directions, lstm.state_size, lstm.hidden_size
        grads = self.grad_views
        readout = self.network.readout
        if self.sequence:
            d_out = d_feats.reshape(batch, n_steps, D * R)
        elif readout != "last":
            lengths, argmax = self._pooled
            d_out = self._buffer("d_pooled", (batch, n_steps, D * R))
            _launch(_ops.pool_steps_backward, batch * D * R, d_feats, lengths, argmax,
                    readout != "max", readout != "mean", d_out)
        else:
            d_out = _device_zeros((batch, n_steps, D * R), self.dtype)
        for k in range(lstm.num_layers - 1, -1, -1):
            mask, cache, W_ih, W_hh, spec = layers[k]
            d_h_n = _device_zeros((D, batch, R), self.dtype)
            if k == lstm.num_layers - 1 and not self.sequence and readout == "last":
                _launch(_ops.features_to_states, d_h_n.size, d_feats, d_h_n)
            d_c_n = _device_zeros((D, batch, H), self.dtype) if lstm.n_states == 2 else None
            targets = {"W_ih": grads[f"weight_ih_l{k}"], "W_hh": grads[f"weight_hh_l{k}"],
                       "bias": grads[f"bias_ih_l{k}"]}
            if lstm.cell == "gru":
                targets["bias_hh"] = grads[f"bias_hh_l{k}"]
            if spec.peephole is not None:
                targets["peephole"] = grads[f"weight_peephole_l{k}"]
            if spec.W_hr is not None:
                targets["W_hr"] = grads[f"weight_hr_l{k}"]
            # The bottom layer's input is the data: its gradient is not needed.
            dx, _, _ = self.backend.backward_device(W_ih, W_hh, cache, d_out, d_h_n, d_c_n,
                                                    targets, input_gradient=k > 0)
            if lstm.cell != "gru":
                # b_ih and b_hh enter the same sum: their gradients are equal.
                grads[f"bias_hh_l{k}"].copy_to_device(grads[f"bias_ih_l{k}"])
            if mask is not None and dx is not None:
                _launch_vector(_ops.multiply, dx.size, _flat(dx), _flat(mask), _flat(dx))
            d_out = dx

    def _update(self):
        from .optimizers import AdamOptimizer

        opt = self.optimizer
        if isinstance(opt, AdamOptimizer):
            lr = opt._advance()
            m, v = self.moments
            adam_update(self.params, self.grads, m, v, self.status, lr, opt.beta_1,
                        opt.beta_2, opt.epsilon)
        else:
            sgd_update(self.params, self.grads, self.moments[0], self.status,
                       opt.learning_rate, opt.momentum, opt.nesterov)

    # --------------------------------------------------------------- snapshots
    def snapshot(self):
        """A device copy of the current parameters (see :class:`_DeviceSnapshot`)."""
        if self.best is None:
            self.best = cuda.device_array_like(self.params)
        self.best.copy_to_device(self.params)
        return _DeviceSnapshot(self.best)

    def load(self, flat):
        """Set the parameters from :meth:`snapshot` or a host vector (``get_flat_params``
        layout)."""
        if isinstance(flat, _DeviceSnapshot):
            self.params.copy_to_device(flat.array)
        else:
            self.params.copy_to_device(np.ascontiguousarray(np.ravel(flat), self.dtype))

    def sync_to_host(self):
        """Copy the parameters, gradients and optimizer state into the host arrays."""
        from .optimizers import AdamOptimizer

        self._unpack(self.params, self.network.params)
        self._unpack(self.grads, self.network.grads)
        if isinstance(self.optimizer, AdamOptimizer):
            self._unpack(self.moments[0], self.optimizer.ms)
            self._unpack(self.moments[1], self.optimizer.vs)
        else:
            self._unpack(self.moments[0], self.optimizer.velocities)

    @staticmethod
    def _unpack(flat, arrays):
        host = flat.copy_to_host()
        start = 0
        for a in arrays:
            a.ravel()[...] = host[start:start + a.size]  # views: the arrays are contiguous
            start += a.size
