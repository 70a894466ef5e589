"""Scaling of each series by its own statistics (``input_scaling="series"``).

Series of one data set can differ in level and amplitude by orders of magnitude (the
current drawn by different appliances, say). Standardised with the training set's
statistics of each channel, the small ones then become almost constant inputs and the
network cannot tell their shapes apart. Scaling each series (and channel) by its own
mean and standard deviation gives every shape the same range, as the usual
z-normalisation of time-series classification does; the level and the amplitude are
not thrown away but given to the network as two more inputs per channel, the same at
every step: the series' mean and the logarithm of its standard deviation.
"""

import numpy as np

from .._utils.validation import valid_steps_mask

__all__ = ["SERIES_SCALE_FLOOR", "series_statistics", "scale_each_series"]

#: A series' standard deviation is taken as at least this share of the channel's
#: standard deviation over the training set: a constant (or nearly constant) series
#: gives zeros and a finite logarithm instead of amplified rounding noise.
SERIES_SCALE_FLOOR = 1e-3


def series_statistics(X, lengths, channel_mean, channel_scale):
    """The statistics that :func:`scale_each_series` gives the network, without scaling
    the series (what a fit needs to standardise them over the training set).

    Returns
    -------
    statistics : ndarray of shape (n_samples, 2 * n_features)
    """
    mean, scale, _ = _centred_series(X, lengths, channel_scale)
    return _statistics(mean, scale, channel_mean, channel_scale)


def _statistics(mean, scale, channel_mean, channel_scale):
    """Levels and log-amplitudes in units of the training set (see
    :func:`scale_each_series`)."""
    return np.concatenate([(mean - channel_mean) / channel_scale,
                           np.log(scale / channel_scale)], axis=1)


def _centred_series(X, lengths, channel_scale):
    """Mean, floored standard deviation, and ``X`` minus the mean (a new array)."""
    n_samples, n_timesteps, _ = X.shape
    if lengths is None:
        # einsum's sums over time are three to four times faster than NumPy's reductions
        # over the middle axis of a (n, T, C) array.
        mean = np.einsum("ntc->nc", X) / n_timesteps
        centred = X - mean[:, None, :]
        var = np.einsum("ntc,ntc->nc", centred, centred) / n_timesteps
    else:
        mask = valid_steps_mask(n_samples, n_timesteps, lengths)[:, :, None]
        count = np.asarray(lengths, dtype=np.float64)[:, None]
        mean = np.where(mask, X, 0.0).sum(axis=1) / count
        centred = X - mean[:, None, :]
        var = np.where(mask, centred ** 2, 0.0).sum(axis=1) / count
    scale = np.maximum(np.sqrt(var), SERIES_SCALE_FLOOR * np.asarray(channel_scale))
    return mean, scale, centred


def scale_each_series(X, lengths, channel_mean, channel_scale):
    """Each series scaled by its own statistics, and the statistics as network inputs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features), float64
    lengths : ndarray of shape (n_samples,) or None
    channel_mean, channel_scale : ndarray of shape (n_features,)
        Mean and standard deviation of each channel over the training set.

    Returns
    -------
    scaled : ndarray of shape (n_samples, n_timesteps, n_features)
        ``(X - mean) / scale`` per series and channel (padded steps are left to the
        caller, which zeroes them).
    statistics : ndarray of shape (n_samples, 2 * n_features)
        The series' levels, ``(mean - channel_mean) / channel_scale``, then the natural
        logarithms of their amplitudes, ``log(scale / channel_scale)``: in the units of
        the training set, so that series normalised beforehand (as in most archives)
        give statistics that are constant up to rounding, not rounding noise blown up
        to unit variance.
    """
    mean, scale, scaled = _centred_series(X, lengths, channel_scale)
    scaled /= scale[:, None, :]
    return scaled, _statistics(mean, scale, channel_mean, channel_scale)
