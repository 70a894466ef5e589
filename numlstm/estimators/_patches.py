"""Patches: consecutive time steps fed to the network as one step.

A series of ``T`` steps and ``C`` channels read in patches of ``p`` steps becomes a series
of ``ceil(T / p)`` steps of ``p * C`` values (the values of each patch side by side, time
first). The network then takes ``p`` times fewer recurrent steps: long series train that
much faster, and a pattern spread over hundreds of raw steps lies within a few dozen
network steps, which an LSTM remembers far more reliably.
"""

import numpy as np

__all__ = ["auto_patch_length", "patch_sequences"]


def auto_patch_length(n_timesteps, max_steps):
    """The smallest patch length that makes ``n_timesteps`` at most ``max_steps`` steps."""
    return max(1, -(-int(n_timesteps) // int(max_steps)))


def patch_sequences(X, lengths, patch_length, extra_features=0, dtype=None):
    """Group the steps of ``X`` into patches of ``patch_length`` steps.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features)
        Zero at padded steps (the last patch of a sequence is filled up with zeros).
    lengths : ndarray of shape (n_samples,) or None
        Valid steps of each sequence.
    patch_length : int
    extra_features : int, default=0
        Columns left after each patch's values for the caller to fill (zero here).
    dtype : dtype, default=None
        Of the result; None: that of ``X``.

    Returns
    -------
    patched : ndarray of shape (n_samples, ceil(n_timesteps / patch_length), \
            patch_length * n_features + extra_features)
        C-contiguous. ``X`` itself when there is nothing to group, add or convert.
    patched_lengths : ndarray of shape (n_samples,) or None
        ``ceil(lengths / patch_length)``: a patch is valid when it holds a valid step.
    """
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    if patch_length == 1 and extra_features == 0 and dtype == X.dtype:
        return X, lengths
    n_samples, n_timesteps, n_features = X.shape
    n_full, rest = divmod(n_timesteps, patch_length)
    width = patch_length * n_features
    patched = np.empty((n_samples, n_full + (rest > 0), width + extra_features), dtype=dtype)
    # One copy (and conversion) into place: the whole patches, then the last, partial one
    # filled up with zeros, then zeros in the caller's columns.
    whole = X[:, :n_full * patch_length].reshape(n_samples, n_full, width)
    patched[:, :n_full, :width] = whole
    if rest:
        patched[:, n_full, :rest * n_features] = X[:, n_full * patch_length:].reshape(
            n_samples, rest * n_features)
        patched[:, n_full, rest * n_features:width] = 0
    patched[:, :, width:] = 0
    if lengths is not None:
        lengths = -(-np.asarray(lengths) // patch_length)
    return patched, lengths
