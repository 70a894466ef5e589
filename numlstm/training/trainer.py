"""The one place that chooses how a stochastic fit runs its optimizer steps (host or device).

The training loop (:func:`numlstm.training.stochastic.run_stochastic`)
decides *which* rows make a step, when an epoch ends, which weights to keep and when to
stop; a trainer does the step itself. :func:`make_trainer` returns

* :class:`HostTrainer` for ``device="cpu"``: the NumPy step on the network's host arrays
  (:meth:`numlstm.nn.network.LSTMNetwork.loss_and_gradient`, :mod:`numlstm.training.optimizers`);
* :class:`numlstm.training.device_trainer.DeviceTrainer` for ``device="cuda"``: the same step with
the
  data, weights, gradients and optimizer state on the GPU for the whole call.

Both have the same methods: :meth:`~HostTrainer.step`, :meth:`~HostTrainer.snapshot`,
:meth:`~HostTrainer.load` and :meth:`~HostTrainer.sync_to_host`.
"""

import numpy as np

from .._utils.blas_threads import single_threaded_blas

from .optimizers import clip_grad_norm, global_norm

__all__ = ["HostTrainer", "make_trainer", "take_batch"]


def take_batch(X, Y, lengths, idx):
    """Rows ``idx`` of the data, cut to the batch's longest sequence when ragged.

    Returns
    -------
    xb, yb : ndarrays
    lb : ndarray or None
    """
    xb, yb = X[idx], Y[idx]
    lb = None
    if lengths is not None:
        lb = lengths[idx]
        steps = int(lb.max())
        xb = xb[:, :steps]
        if yb.ndim == 3:
            yb = yb[:, :steps]
    return xb, yb, lb


def _set_params(params, values):
    for param, value in zip(params, values):
        np.copyto(param, value)


class HostTrainer:
    """Optimizer steps on the network's host NumPy arrays.

    Parameters
    ----------
    network : LSTMNetwork
    optimizer : AdamOptimizer or SGDOptimizer
        Built on ``network.params``.
    X, Y, lengths : ndarrays
        Standardised sequences, encoded targets (network dtype), lengths or ``None``.
    alpha : float
        L2 penalty.
    clip_grad_norm : float or None
        Largest global gradient norm; ``None`` for no clipping.
    """

    def __init__(self, network, optimizer, X, Y, lengths, *, alpha, clip_grad_norm):
        self.network = network
        self.optimizer = optimizer
        self.X, self.Y, self.lengths = X, Y, lengths
        self.alpha = alpha
        self.max_norm = clip_grad_norm
        self.params = network.params
        # Weights of the last step whose loss and gradient were finite (copied just
        # before that step's update): what the network keeps if training diverges.
        self.last_finite = [p.copy() for p in self.params]

    def step(self, idx):
        """One optimizer step on the training rows ``idx``.

        Returns
        -------
        loss : float
            The batch loss (with the L2 penalty) at the weights before the step.
        problem : {None, "loss", "gradient", "weights"}
            What became NaN or infinite. The weights are then those of the last step
            whose loss and gradient were finite: the weights that produced the non-finite
            value, or the update that did, are discarded.
        """
        # The host arithmetic of a step (norms, penalty, dense layer) is small: on the
        # BLAS's own threads it would fight numba's spinning workers for the cores.
        with single_threaded_blas():
            return self._step(idx)

    def _step(self, idx):
        net = self.network
        params = self.params
        xb, yb, lb = take_batch(self.X, self.Y, self.lengths, idx)
        loss = net.loss_and_gradient(xb, yb, lb, alpha=self.alpha)
        if self.max_norm is not None:
            grad_norm = clip_grad_norm(net.grads, self.max_norm)
        else:
            grad_norm = global_norm(net.grads)
        if not (np.isfinite(loss) and np.isfinite(grad_norm)):
            _set_params(params, self.last_finite)
            return loss, "loss" if not np.isfinite(loss) else "gradient"
        for saved, param in zip(self.last_finite, params):
            np.copyto(saved, param)
        try:
            self.optimizer.update_params(params, net.grads)
        except BaseException:  # interrupted inside the update: undo the half-applied step
            _set_params(params, self.last_finite)
            raise
        if not net.all_finite():
            _set_params(params, self.last_finite)
            return loss, "weights"
        return loss, None

    def snapshot(self):
        """A copy of every parameter, laid out as ``network.get_flat_params()``."""
        return self.network.get_flat_params()

    def load(self, flat):
        """Set every parameter from :meth:`snapshot` (or any such flat vector)."""
        self.network.set_flat_params(flat)

    def sync_to_host(self):
        """Nothing to do: the host arrays are the parameters."""


def make_trainer(network, optimizer, X, Y, lengths, *, alpha, clip_grad_norm):
    """The trainer for the device the network's layers run on (see the module docstring).

    Parameters are those of :class:`HostTrainer`.
    """
    if network.lstm.device == "cuda":
        from .device_trainer import DeviceTrainer

        return DeviceTrainer(network, optimizer, X, Y, lengths, alpha=alpha,
                             clip_grad_norm=clip_grad_norm)
    return HostTrainer(network, optimizer, X, Y, lengths, alpha=alpha,
                       clip_grad_norm=clip_grad_norm)
