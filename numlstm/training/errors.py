"""The error a fit raises when training diverges."""

__all__ = ["TrainingDivergedError", "diverged"]


class TrainingDivergedError(FloatingPointError, ValueError):
    """Raised when the training loss, a gradient or the weights become NaN or infinite.

    A subclass of both :class:`FloatingPointError` and :class:`ValueError`.
    Every mini-batch step is checked (loss, gradient norm, and the weights
    after the update), so the error comes on the step where the first
    non-finite value appears. Training stops there and the estimator stays
    fitted and usable with the last finite weights: those of the last step
    whose loss and gradient were finite (the weights that produced the
    non-finite value, or the update that did, are discarded). ``n_iter_``
    and ``loss_curve_`` count the completed epochs.
    The optimizer state is dropped, so a following ``partial_fit`` or
    ``warm_start`` fit starts a fresh optimizer with the current
    ``learning_rate_init``.

    Attributes
    ----------
    epoch : int
        Epoch (1-based, counted over all fit calls) where it happened.
    step : int
        Mini-batch (1-based, within that epoch) where it happened; for
        ``solver="lbfgs"`` the number of loss evaluations.
    """

    def __init__(self, message="", epoch=None, step=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step


def diverged(epoch, step, what, *, learning_rate_init, clip_grad_norm, n_iter):
    """The :class:`TrainingDivergedError` of a non-finite ``what`` (loss, gradient or
    weights) at mini-batch ``step`` of ``epoch`` (``epoch=None``: loss evaluation
    ``step`` of L-BFGS), with the advice that fits the settings."""
    where = (f"at loss evaluation {step} of L-BFGS" if epoch is None
             else f"at mini-batch {step} of epoch {epoch}")
    return TrainingDivergedError(
        f"Training diverged: the {what} became NaN or infinite {where}. "
        f"The learning rate is probably too large: try a smaller learning_rate_init "
        f"(currently {learning_rate_init:g})"
        + ("" if clip_grad_norm is not None else " or set clip_grad_norm")
        + f". Training stopped; the estimator keeps the last finite weights "
        f"(n_iter_={n_iter} completed epochs).",
        epoch=epoch, step=step,
    )
