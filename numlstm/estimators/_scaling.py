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
           "scale_each_series", "squashing_measures", "within_series_share"]

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


def squashing_measures(X, lengths):
    """What scaling each channel as a whole would do to the series: the share of each
    channel's variance that lies within the series, and the median series' spread.

    By the law of total variance, a channel's variance over all valid steps is the
    (step-weighted) mean of the series' own variances, plus the variance of the series'
    means. The *within share* is the first over the sum: series normalised beforehand
    give 1; series whose levels differ more than their values vary give nearly 0, and
    standardised with one mean and deviation for the whole channel their shapes span a
    small part of the inputs' range. Where the series differ in amplitude by decades,
    most of the variance comes from the few largest, the share stays near 1, and the
    others are squashed all the same: the *median spread*, the median over the series of
    each one's standard deviation in units of the channel's, is then far below 1.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_timesteps, n_features), float64
    lengths : ndarray of shape (n_samples,) or None

    Returns
    -------
    share, spread : ndarrays of shape (n_features,)
        The within share (in ``[0, 1]``) and the median spread; both 1 for a channel
        that is constant over the training set.
    """
    n_samples, n_timesteps, n_features = X.shape
    if lengths is None:
        counts = np.full(n_samples, float(n_timesteps))
    else:
        counts = np.asarray(lengths, dtype=np.float64)
    # No floor: the series' own standard deviations, exactly.
    mean, scale, _ = _centred_series(X, lengths, np.zeros(n_features))
    within = counts @ scale ** 2
    grand_mean = counts @ mean / counts.sum()
    total = within + counts @ (mean - grand_mean) ** 2
    share = np.ones(n_features)
    np.divide(within, total, out=share, where=total > 0)
    channel_scale = np.sqrt(total / counts.sum())
    spread = np.ones(n_features)
    np.divide(np.median(scale, axis=0), channel_scale, out=spread, where=total > 0)
    return share, spread


def within_series_share(X, lengths):
    """The within share of :func:`squashing_measures`."""
    return squashing_measures(X, lengths)[0]


def median_relative_spread(X, lengths):
    """The median spread of :func:`squashing_measures`."""
    return squashing_measures(X, lengths)[1]


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
