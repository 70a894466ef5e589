"""How much memory a fit will need, checked before anything large is allocated."""

from .._utils.memory import format_bytes

__all__ = ["check_fit_memory"]


def check_fit_memory(x_shape, n_outputs, *, hidden_size, num_layers, bidirectional, solver,
                     batch_size, itemsize, available, fraction):
    """Raise MemoryError, before allocating, when a fit cannot fit in memory.

    Counts the weights and their companions (gradient, optimizer moments, copies
    kept for divergence and interruption), the activations of one mini-batch
    (the whole training set for "lbfgs") that the backward pass keeps, and the
    standardised copy of the data.

    Parameters
    ----------
    x_shape : tuple (n_samples, n_timesteps, n_features)
    n_outputs : int
    hidden_size, num_layers, bidirectional, solver, batch_size
        The estimator's settings (``batch_size`` may be "auto").
    itemsize : int
        Bytes per value of the network's dtype.
    available : int or None
        Bytes available (None: unknown, nothing is refused).
    fraction : float
        Share of ``available`` that the fit may use.
    """
    n_samples, n_timesteps, n_features = x_shape
    item = itemsize
    H, L = hidden_size, num_layers
    D = 2 if bidirectional else 1
    # Closed forms (no loop over layers: num_layers may be absurdly large).
    # Per layer: weights D * 4H * (n_in + H + 2); per sequence and timestep, the
    # gates and their gradients (4H each), h_prev and c_prev, the output, the input
    # gradient.
    n_params = (D * n_outputs * H + n_outputs + D * 4 * H * (n_features + H + 2)
                + (L - 1) * D * 4 * H * (D * H + H + 2))
    activations = (L * (D * 10 * H + D * H) + n_features + (L - 1) * D * H)
    if solver == "lbfgs":
        batch = n_samples
        per_param = 6 * item + 30 * 8  # L-BFGS-B keeps ~2*10 float64 vectors and more
    else:
        batch = n_samples if batch_size == "auto" and n_samples < 64 else (
            64 if batch_size == "auto" else min(batch_size, n_samples))
        per_param = 8 * item + 8  # params, grad, 2 moments, copies; float64 init draw
    need = (n_params * per_param + batch * n_timesteps * activations * item
            + n_samples * n_timesteps * n_features * (item + 16))
    if available is not None and need > fraction * available:
        raise MemoryError(
            f"This fit needs about {format_bytes(need)} of memory ({n_params} weights with "
            f"hidden_size={H}, num_layers={L}, and the activations of batches of "
            f"{batch} sequences of {n_timesteps} steps), but only "
            f"{format_bytes(available)} is available. Reduce hidden_size, num_layers or "
            "batch_size, or use shorter sequences."
        )
