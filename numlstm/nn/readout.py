"""Readouts: how a sequence-to-one network turns the recurrent outputs into the dense
layer's input.

``"last"`` reads the final hidden state of each direction, the classic sequence-to-one
LSTM. The pooled readouts summarise the last layer's output over every valid step:
``"mean"`` averages it, ``"max"`` takes each unit's largest value, ``"mean_max"`` puts
both side by side. Pooling gives the dense layer (and the gradient) a direct path to
every step instead of only the last, which is what lets a recurrent network pick out
a pattern wherever it occurs in a long series.

The functions here work on host arrays (NumPy); the GPU trainer has the same operations
as CUDA kernels in :mod:`numlstm.kernels.cuda.training_ops`.
"""

import numpy as np

__all__ = ["READOUTS", "POOLED_READOUTS", "RunningPool", "check_readout", "readout_width",
           "pool", "pool_backward"]

#: Every readout a sequence-to-one network accepts.
READOUTS = ("last", "mean", "max", "mean_max")
#: The readouts computed from the outputs at every step.
POOLED_READOUTS = ("mean", "max", "mean_max")


def check_readout(readout):
    """Return ``readout`` if it names a readout, else raise ValueError."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {list(READOUTS)}, got {readout!r}.")
    return readout


def readout_width(readout, output_size):
    """Number of features a readout gives for recurrent outputs of ``output_size``."""
    return 2 * output_size if readout == "mean_max" else output_size


def _valid_steps(shape, lengths):
    """(B, T, 1) boolean mask of the valid steps, or None when every step is valid."""
    if lengths is None:
        return None
    return (np.arange(shape[1])[None, :] < np.asarray(lengths)[:, None])[:, :, None]


def pool(out, lengths, readout):
    """Pool the recurrent outputs over the valid steps of each sequence.

    Parameters
    ----------
    out : ndarray of shape (n_samples, n_timesteps, n_units)
        Outputs of the last recurrent layer.
    lengths : ndarray of shape (n_samples,) or None
        Valid steps of each sequence (at least one); None means all.
    readout : {"mean", "max", "mean_max"}

    Returns
    -------
    features : ndarray of shape (n_samples, readout_width(readout, n_units))
    cache : tuple
        What :func:`pool_backward` needs.
    """
    batch, n_steps, units = out.shape
    valid = _valid_steps(out.shape, lengths)
    parts, argmax = [], None
    if readout in ("mean", "mean_max"):
        counts = (np.full(batch, n_steps) if lengths is None else np.asarray(lengths))
        counts = counts.astype(out.dtype)[:, None]
        total = out.sum(axis=1) if valid is None else np.where(valid, out, 0).sum(axis=1)
        parts.append(total / counts)
    else:
        counts = None
    if readout in ("max", "mean_max"):
        masked = out if valid is None else np.where(valid, out, -np.inf)
        argmax = masked.argmax(axis=1)  # (B, units): the step whose value is read
        parts.append(np.take_along_axis(out, argmax[:, None, :], axis=1)[:, 0, :])
    features = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return features.astype(out.dtype, copy=False), (readout, valid, counts, argmax)


def pool_backward(d_features, cache, out_shape, dtype):
    """Gradient of :func:`pool` with respect to ``out``.

    Parameters
    ----------
    d_features : ndarray of shape (n_samples, width)
        Gradient of the loss with respect to the pooled features.
    cache : tuple
        As returned by :func:`pool`.
    out_shape : tuple (n_samples, n_timesteps, n_units)
    dtype : numpy dtype
        The recurrent outputs' dtype.

    Returns
    -------
    d_out : ndarray of shape ``out_shape``
        Zero at padded steps.
    """
    readout, valid, counts, argmax = cache
    units = out_shape[2]
    d_out = np.zeros(out_shape, dtype=dtype)
    offset = 0
    if counts is not None:
        d_mean = d_features[:, :units] / counts
        d_out += d_mean[:, None, :]
        if valid is not None:
            d_out *= valid
        offset = units
    if argmax is not None:
        d_max = d_features[:, offset:offset + units]
        rows = np.arange(out_shape[0])[:, None]
        cols = np.arange(units)[None, :]
        d_out[rows, argmax, cols] += d_max
    return d_out


class RunningPool:
    """A pooled readout of sequences that arrive a few steps at a time.

    Keeps the sum (in float64) and the maximum of each unit over the steps added so far,
    so the features of the whole prefix cost nothing to recompute. :func:`pool` of the
    whole prefix gives the same features to float rounding: it sums in the outputs'
    dtype, in another order.

    Parameters
    ----------
    readout : {"mean", "max", "mean_max"}
    batch : int
        Number of sequences.
    units : int
        Outputs of the last recurrent layer per step.
    """

    def __init__(self, readout, batch, units):
        if readout not in POOLED_READOUTS:
            raise ValueError(f"readout must be one of {list(POOLED_READOUTS)}, got "
                             f"{readout!r}.")
        self.readout = readout
        self.count = 0
        self.total = np.zeros((batch, units))
        self.maximum = np.full((batch, units), -np.inf)

    def add(self, out):
        """Take the outputs ``out`` (batch, steps, units) of the next steps."""
        self.count += out.shape[1]
        self.total += out.sum(axis=1, dtype=np.float64)
        np.maximum(self.maximum, out.max(axis=1), out=self.maximum)

    def features(self, pending=None):
        """The pooled features (batch, width) in float64, of the steps added so far
        followed by the outputs ``pending`` (batch, steps, units), which are not kept."""
        count, total, maximum = self.count, self.total, self.maximum
        if pending is not None and pending.shape[1]:
            count += pending.shape[1]
            total = total + pending.sum(axis=1, dtype=np.float64)
            maximum = np.maximum(maximum, pending.max(axis=1))
        if count == 0:
            raise ValueError("no steps have been pooled yet")
        parts = []
        if self.readout in ("mean", "mean_max"):
            parts.append(total / count)
        if self.readout in ("max", "mean_max"):
            parts.append(maximum.astype(np.float64))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
