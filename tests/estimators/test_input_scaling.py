"""``input_scaling="series"``: each series scaled by its own statistics, which the network
also gets as inputs."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from numlstm import LSTMClassifier, LSTMRegressor
from numlstm.estimators._scaling import (median_relative_spread, scale_each_series,
                                         within_series_share)

from test_sklearn_checks import CHECKS_MAX_ITER


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def test_statistics_match_a_per_series_reference_on_ragged_batches():
    rng = np.random.default_rng(0)
    lengths = np.array([5, 1, 8, 3])
    X = rng.normal(size=(4, 8, 2)) * [3.0, 0.01] + [10.0, -2.0]
    X[2, :, 1] = 7.0  # a constant channel: floored scale, zeros
    channel_mean, channel_scale = np.array([1.0, 2.0]), np.array([4.0, 0.5])
    scaled, statistics = scale_each_series(X, lengths, channel_mean, channel_scale)
    for i, n in enumerate(lengths):
        series = X[i, :n]
        mean = series.mean(axis=0)
        scale = np.maximum(series.std(axis=0), 1e-3 * channel_scale)
        np.testing.assert_allclose(scaled[i, :n], (series - mean) / scale, atol=1e-12)
        np.testing.assert_allclose(statistics[i], np.concatenate(
            [(mean - channel_mean) / channel_scale, np.log(scale / channel_scale)]),
            rtol=1e-12, atol=1e-12)
    assert np.all(scaled[2, :, 1] == 0.0) and np.isfinite(statistics).all()
    # Values after a sequence's end do not enter its statistics.
    X[0, 5:] = 1e6
    again, again_statistics = scale_each_series(X, lengths, channel_mean, channel_scale)
    np.testing.assert_array_equal(again[0, :5], scaled[0, :5])
    np.testing.assert_array_equal(again_statistics[0], statistics[0])


def test_median_relative_spread_of_ragged_series():
    rng = np.random.default_rng(8)
    lengths = np.array([6, 3, 8, 5, 2])
    X = rng.normal(size=(5, 8, 2)) * np.array([1e-3, 1e-2, 1.0, 10.0, 1e-1])[:, None, None]
    X[:, :, 1] = -4.0
    values = [X[i, :n, 0] for i, n in enumerate(lengths)]
    expected = np.median([v.std() for v in values]) / np.concatenate(values).std()
    spread = median_relative_spread(X, lengths)
    np.testing.assert_allclose(spread, [expected, 1.0], rtol=1e-12)
    assert spread[0] < 0.1


def test_within_series_share_is_the_law_of_total_variance_over_valid_steps():
    rng = np.random.default_rng(6)
    lengths = np.array([7, 2, 5, 9, 4])
    X = (rng.normal(size=(5, 9, 3)) * [1.0, 5.0, 0.0]
         + rng.normal(size=(5, 1, 3)) * [0.5, 40.0, 0.0])
    X[:, :, 2] = 3.0  # constant over the training set: nothing lies between the series
    share = within_series_share(X, lengths)
    values = [X[i, :n] for i, n in enumerate(lengths)]
    pooled = np.concatenate(values)
    within = sum(((v - v.mean(axis=0)) ** 2).sum(axis=0) for v in values)
    total = ((pooled - pooled.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(share[:2], within[:2] / total[:2], rtol=1e-12)
    assert share[2] == 1.0 and share[1] < 0.1 < 0.5 < share[0] < 1.0
    # Padding does not count.
    X[0, 7:] = 1e6
    np.testing.assert_array_equal(within_series_share(X, lengths), share)
    # Series normalised beforehand have all their variance within.
    Z = (X[:, :, :2] - X[:, :, :2].mean(axis=1, keepdims=True)) / X[:, :, :2].std(
        axis=1, keepdims=True)
    np.testing.assert_allclose(within_series_share(Z, None), 1.0)


def test_auto_scales_each_series_when_levels_and_amplitudes_dominate():
    rng = np.random.default_rng(7)
    shapes = rng.normal(size=(40, 12, 1))
    labels = (shapes[:, :6, 0].mean(axis=1) > 0).astype(int)
    spread = shapes * 10.0 ** rng.uniform(-2, 2, size=(40, 1, 1))
    normalised = (shapes - shapes.mean(axis=1, keepdims=True)) / shapes.std(
        axis=1, keepdims=True)
    fitted = {}
    for name, X in (("spread", spread), ("normalised", normalised)):
        fitted[name] = quiet_fit(LSTMClassifier(hidden_size=4, max_iter=2, random_state=0),
                                 X, labels)
    assert fitted["spread"].input_scaling_ == "series"
    assert fitted["normalised"].input_scaling_ == "channel"
    # A default fit on data normalised beforehand can predict online.
    stream = fitted["normalised"].stream(batch_size=3)
    np.testing.assert_allclose(stream.predict_proba(normalised[:3]),
                               fitted["normalised"].predict_proba(normalised[:3]), atol=1e-5)
    # Targets at every step keep the channel scaling: an output must not see later steps.
    reg = quiet_fit(LSTMRegressor(hidden_size=4, max_iter=2, random_state=0), spread,
                    spread)
    assert reg.input_scaling_ == "channel"


def test_shapes_are_learned_whatever_their_amplitude():
    # Two shapes (a rising and a falling ramp) at levels and amplitudes spread over four
    # decades: the shape decides the class.
    rng = np.random.default_rng(1)
    n, T = 120, 16
    labels = rng.integers(0, 2, size=n)
    ramp = np.linspace(-1, 1, T)
    amplitude = 10.0 ** rng.uniform(-2, 2, size=n)
    X = (np.where(labels[:, None] == 1, ramp, -ramp) + 0.3 * rng.normal(size=(n, T)))
    X = (X * amplitude[:, None] + 50 * amplitude[:, None] * rng.normal(size=(n, 1)))[..., None]
    clf = quiet_fit(LSTMClassifier(hidden_size=8, max_iter=60, input_scaling="series",
                                   random_state=0), X[:80], labels[:80])
    assert clf.input_scaling_ == "series" and clf.network_.lstm.input_size == 3
    assert clf.score(X[80:], labels[80:]) >= 0.9


def test_level_and_amplitude_still_reach_the_network():
    # Same shape everywhere; the class is the amplitude, which scaling each series removes
    # from the steps and the statistics give back.
    rng = np.random.default_rng(2)
    n, T = 120, 12
    labels = rng.integers(0, 2, size=n)
    amplitude = np.where(labels == 1, 3.0, 1.0) * 10.0 ** rng.uniform(-0.2, 0.2, size=n)
    X = (amplitude[:, None] * rng.normal(size=(n, T)))[..., None]
    clf = quiet_fit(LSTMClassifier(hidden_size=8, max_iter=60, input_scaling="series",
                                   random_state=0), X[:80], labels[:80])
    assert clf.score(X[80:], labels[80:]) >= 0.9


def test_series_normalised_beforehand_give_near_zero_statistics():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 20, 2))
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    reg = quiet_fit(LSTMRegressor(hidden_size=4, max_iter=2, input_scaling="series",
                                  random_state=0), X, X[:, -1, 0])
    inputs, _ = reg._transform_input(X, None)
    assert inputs.shape == (30, 20, 2 + 4)
    # Rounding differences between the series are not blown up to unit variance.
    assert np.abs(inputs[:, :, 2:]).max() < 1e-5


def test_ragged_predictions_equal_one_series_at_a_time():
    rng = np.random.default_rng(4)
    sequences = [rng.normal(size=(n, 2)) * 10.0 ** rng.integers(-1, 2) for n in
                 (4, 9, 6, 2, 7) * 8]
    y = np.array([s[:, 0].std() for s in sequences])
    reg = quiet_fit(LSTMRegressor(hidden_size=5, max_iter=3, input_scaling="series",
                                  patch_length=2, random_state=0), sequences, y)
    together = reg.predict(sequences[:10])
    alone = np.array([reg.predict([s])[0] for s in sequences[:10]])
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-6)


def test_streams_and_changed_scaling_are_refused_with_the_reason():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 6, 1))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    clf = quiet_fit(LSTMClassifier(hidden_size=4, max_iter=2, input_scaling="series",
                                   warm_start=True, random_state=0), X, y)
    with pytest.raises(ValueError, match="input_scaling='series'"):
        clf.stream()
    clf.set_params(input_scaling="channel")
    with pytest.raises(ValueError, match="input_scaling"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="input_scaling"):
        LSTMClassifier(input_scaling="window").fit(X, y)


@parametrize_with_checks(
    [LSTMClassifier(input_scaling="series", max_iter=CHECKS_MAX_ITER),
     LSTMRegressor(input_scaling="series", patch_length=2, max_iter=CHECKS_MAX_ITER)],
    expected_failed_checks=lambda est: est._more_tags()["_xfail_checks"])
def test_sklearn_checks_with_series_scaling(estimator, check):
    check(estimator)
