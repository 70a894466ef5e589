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

__all__ = ["SERIES_SCALE_FLOOR", "median_relative_spread", "series_statistics",
           "scale_each_series", "within_series_share"]

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


def within_series_share(X, lengths):
    """The share of each channel's variance over the training set that lies within the
    series rather than between their levels and amplitudes.

    By the law of total variance, a channel's variance over all valid steps is the
    (step-weighted) mean of the series' own variances, plus the variance of the series'
    means; the share is the first over the sum. Series normalised beforehand give 1;
    series whose levels or amplitudes differ by decades give nearly 0: standardised with
    one mean and deviation for the whole channel, their shapes then span a small part of
    the inputs' range.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features), float64
    lengths : ndarray of shape (n_samples,) or None

    Returns
    -------
    share : ndarray of shape (n_features,)
        In ``[0, 1]``; 1 for a channel that is constant over the training set.
    """
    n_samples, n_timesteps, n_features = X.shape
    if lengths is None:
        counts = np.full(n_samples, float(n_timesteps))
    else:
        counts = np.asarray(lengths, dtype=np.float64)
    mean, _, centred = _centred_series(X, lengths, np.ones(n_features))
    if lengths is not None:
        centred[~valid_steps_mask(n_samples, n_timesteps, lengths)] = 0.0
    within = np.einsum("ntc,ntc->c", centred, centred)
    grand_mean = counts @ mean / counts.sum()
    between = counts @ (mean - grand_mean) ** 2
    total = within + between
    share = np.ones(n_features)
    np.divide(within, total, out=share, where=total > 0)
    return share


def median_relative_spread(X, lengths):
    """The median over the series of each one's standard deviation, in units of the
    channel's standard deviation over the training set.

    Where series differ in amplitude by decades, most of a channel's variance comes from
    the few largest, and the others keep nearly all their variance within themselves
    (:func:`within_series_share` stays near 1) yet span a small part of the channel's
    range: their median spread is then far below 1.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features), float64
    lengths : ndarray of shape (n_samples,) or None

    Returns
    -------
    spread : ndarray of shape (n_features,)
        1 for a channel that is constant over the training set.
    """
    n_samples, n_timesteps, n_features = X.shape
    _, scale, _ = _centred_series(X, lengths, np.zeros(n_features))
    values = X[valid_steps_mask(n_samples, n_timesteps, lengths)]
    channel_scale = values.std(axis=0)
    spread = np.ones(n_features)
    np.divide(np.median(scale, axis=0), channel_scale, out=spread, where=channel_scale > 0)
    return spread


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
