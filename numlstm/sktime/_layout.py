"""sktime's collections to numlstm's sequences.

sktime's ``numpy3D`` holds (n_instances, n_channels, n_timepoints): channels before time.
numlstm takes (n_samples, n_timesteps, n_features), and unequal lengths as a list of
(n_timesteps_i, n_features) arrays, which is how sktime's ``df-list`` already lays out
each series (one row per time point, one column per channel).
"""

import numpy as np

__all__ = ["to_sequences"]


def to_sequences(X):
    """numlstm input from sktime's ``numpy3D`` array or ``df-list`` of data frames.

    Parameters
    ----------
    X : ndarray of shape (n_instances, n_channels, n_timepoints) or list of DataFrame
        A collection in one of the two inner types the sktime estimators declare.

    Returns
    -------
    ndarray of shape (n_instances, n_timepoints, n_channels) or list of ndarray
        The same series, time before channels.
    """
    if isinstance(X, np.ndarray):
        return np.ascontiguousarray(X.transpose(0, 2, 1))
    return [np.ascontiguousarray(frame.to_numpy(dtype=np.float64)) for frame in X]
