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


def patch_sequences(X, lengths, patch_length):
    """Group the steps of ``X`` into patches of ``patch_length`` steps.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features)
        Zero at padded steps (the last patch of a sequence is filled up with zeros).
    lengths : ndarray of shape (n_samples,) or None
        Valid steps of each sequence.
    patch_length : int

    Returns
    -------
    patched : ndarray of shape (n_samples, ceil(n_timesteps / patch_length), \
            patch_length * n_features)
        C-contiguous, the dtype of ``X``.
    patched_lengths : ndarray of shape (n_samples,) or None
        ``ceil(lengths / patch_length)``: a patch is valid when it holds a valid step.
    """
    if patch_length == 1:
        return X, lengths
    n_samples, n_timesteps, n_features = X.shape
    n_patches = -(-n_timesteps // patch_length)
    padded = np.zeros((n_samples, n_patches * patch_length, n_features), dtype=X.dtype)
    padded[:, :n_timesteps] = X
    patched = padded.reshape(n_samples, n_patches, patch_length * n_features)
    if lengths is not None:
        lengths = -(-np.asarray(lengths) // patch_length)
    return patched, lengths
