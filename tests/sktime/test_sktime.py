"""numlstm's sktime estimators: sktime's own estimator checks, the data layouts, the
forecaster's windows, strategies, in-sample points and updates, and sktime's tuning,
pipelines and evaluation around them."""

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

sktime = pytest.importorskip("sktime", reason="the sktime estimators need sktime")

from sktime.datasets import load_airline, load_longley  # noqa: E402
from sktime.forecasting.base import ForecastingHorizon  # noqa: E402
from sktime.forecasting.compose import TransformedTargetForecaster  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.forecasting.model_selection import ForecastingGridSearchCV  # noqa: E402
from sktime.split import ExpandingWindowSplitter, SlidingWindowSplitter  # noqa: E402
from sktime.transformations.series.difference import Differencer  # noqa: E402
from sktime.utils.estimator_checks import check_estimator  # noqa: E402

from numlstm import LSTMClassifier, LSTMRegressor  # noqa: E402
from numlstm.sktime import (LSTMForecaster, LSTMTimeSeriesClassifier,  # noqa: E402
                            LSTMTimeSeriesRegressor)
from numlstm.sktime._parameters import NetworkParameters  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # sktime announces a change of its own default (remember_data) on every forecaster.
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

SMALL = {"hidden_size": 4, "max_iter": 3, "batch_size": 8, "random_state": 0}


# ------------------------------------------------------------------ sktime's checks
@pytest.mark.slow
@pytest.mark.parametrize("estimator", [LSTMTimeSeriesClassifier, LSTMTimeSeriesRegressor,
                                       LSTMForecaster],
                         ids=lambda cls: cls.__name__)
def test_sktime_check_estimator(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, raise_exceptions=False, verbose=False)
    not_passed = {name: str(outcome)[:200] for name, outcome in results.items()
                  if outcome != "PASSED"}
    assert len(results) > 100
    assert not not_passed, not_passed


def test_wrappers_expose_the_estimators_parameters():
    """The collection wrappers take every parameter of numlstm's estimators, with the same
    defaults, except those that only make sense for a model kept across fits."""
    kept_across_fits = {"warm_start", "checkpoint", "checkpoint_every"}
    for estimator in (LSTMClassifier, LSTMRegressor):
        theirs = inspect.signature(estimator.__init__).parameters
        ours = inspect.signature(NetworkParameters.__init__).parameters
        expected = [name for name in theirs if name not in kept_across_fits]
        assert list(ours) == expected
        for name in expected[1:]:
            assert ours[name].default == theirs[name].default, name


def test_import_numlstm_does_not_import_sktime():
    code = "import sys, numlstm; print('sktime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------- collections (layouts)
def _panel(n=12, channels=2, length=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, channels, length))
    y_class = np.where(X[:, 0, -3:].mean(axis=1) > 0, "up", "down")
    return X, y_class, X[:, 1].mean(axis=1)


def test_classifier_reads_channels_before_time():
    """sktime's numpy3D is (instances, channels, time); the numlstm estimator inside sees
    (instances, time, channels): the same model as numlstm's own on transposed data."""
    X, y, _ = _panel()
    ours = LSTMTimeSeriesClassifier(**SMALL).fit(X, y)
    direct = LSTMClassifier(**SMALL).fit(X.transpose(0, 2, 1), y)
    np.testing.assert_array_equal(ours.predict_proba(X),
                                  direct.predict_proba(X.transpose(0, 2, 1)))
    # two channels, and with series scaling each channel's level and log-amplitude
    scaled_by_series = ours.estimator_.input_scaling_ == "series"
    assert ours.estimator_.network_.lstm.input_size == 2 + 4 * scaled_by_series
    assert set(ours.predict(X)) <= {"up", "down"}


def test_regressor_on_a_multiindex_frame_and_unequal_lengths():
    X, _, y = _panel()
    frames = []
    for i, series in enumerate(X):
        length = 9 - i % 4  # unequal lengths
        index = pd.MultiIndex.from_product([[i], range(length)])
        frames.append(pd.DataFrame(series[:, :length].T, index=index, columns=["a", "b"]))
    multiindex = pd.concat(frames)
    reg = LSTMTimeSeriesRegressor(**SMALL).fit(multiindex, y)
    direct = LSTMRegressor(**SMALL).fit([s[:, :9 - i % 4].T for i, s in enumerate(X)], y)
    np.testing.assert_allclose(reg.predict(multiindex),
                               direct.predict([s[:, :9 - i % 4].T for i, s in enumerate(X)]))


def test_regressor_trains_one_network_for_several_targets():
    """Several target columns: one network with an output each, as numlstm's own
    estimator trains (sktime's vectorisation trained one network per column)."""
    X, _, y = _panel()
    targets = np.stack([y, -2.0 * y + 1.0], axis=1)
    direct = LSTMRegressor(**SMALL).fit(X.transpose(0, 2, 1), targets)
    for given in (targets, pd.DataFrame(targets, columns=["first", "second"])):
        reg = LSTMTimeSeriesRegressor(**SMALL).fit(X, given)
        assert reg.estimator_.n_outputs_ == 2
        prediction = reg.predict(X)
        assert type(prediction) is type(given) and prediction.shape == targets.shape
        np.testing.assert_array_equal(np.asarray(prediction),
                                      direct.predict(X.transpose(0, 2, 1)))
    if isinstance(prediction, pd.DataFrame):
        assert list(prediction.columns) == ["first", "second"]


# ------------------------------------------------------------------- forecaster
@pytest.fixture(scope="module")
def airline():
    return np.log(load_airline())


def _windows_of(values, L):
    return np.stack([values[i:i + L] for i in range(len(values) - L + 1)])


def test_direct_forecast_reads_the_last_window(airline):
    f = LSTMForecaster(window_length=6, **SMALL).fit(airline, fh=[1, 2, 3])
    forecast = f.predict()
    raw = f.regressor_.predict(airline.to_numpy()[-6:].reshape(1, 6, 1))
    np.testing.assert_allclose(forecast.to_numpy(), raw.ravel())
    assert list(forecast.index) == list(ForecastingHorizon([1, 2, 3]).to_absolute_index(
        f.cutoff))
    # The network was trained on every window and the three values after it.
    assert f.regressor_.n_outputs_ == 3
    # An absolute fh in fit gives the same numbers.
    absolute = ForecastingHorizon(forecast.index, is_relative=False)
    g = LSTMForecaster(window_length=6, **SMALL).fit(airline, fh=absolute)
    np.testing.assert_allclose(g.predict().to_numpy(), forecast.to_numpy())


def test_direct_forecast_refuses_a_step_it_was_not_fitted_for(airline):
    f = LSTMForecaster(window_length=6, **SMALL).fit(airline, fh=[1, 3])
    with pytest.raises(ValueError, match="fh given to fit|forecasting horizon"):
        f.predict(fh=[2])


def test_recursive_forecast_feeds_back_its_forecasts(airline):
    f = LSTMForecaster(window_length=5, strategy="recursive", **SMALL).fit(airline)
    forecast = f.predict(fh=[1, 2, 3]).to_numpy()
    window = list(airline.to_numpy()[-5:])
    expected = []
    for _ in range(3):
        step = float(np.ravel(f.regressor_.predict(np.array(window[-5:]).reshape(1, 5, 1)))[0])
        expected.append(step)
        window.append(step)
    np.testing.assert_allclose(forecast, expected, rtol=1e-12)
    # Any horizon at predict, no fh needed in fit.
    assert f.predict(fh=[7]).shape == (1,)


def test_in_sample_forecasts(airline):
    L = 6
    f = LSTMForecaster(window_length=L, strategy="recursive", **SMALL).fit(airline)
    n = len(airline)
    steps = np.arange(-(n - 1), 1)  # every observed point
    fitted = f.predict(fh=steps).to_numpy()
    # The first L points have no window of L observations before them.
    assert np.all(np.isnan(fitted[:L]))
    windows = _windows_of(airline.to_numpy(), L)[:-1]  # the windows ending before each point
    expected = f.regressor_.predict(windows[..., None]).ravel()
    np.testing.assert_allclose(fitted[L:], expected)
    # Direct, fh [-1, 0, 2, 3]: the network forecasts leads 1-3, and each in-sample point
    # comes from the window that ends 2 steps (the shortest lead of fh) before it.
    d = LSTMForecaster(window_length=L, **SMALL).fit(airline, fh=[-1, 0, 2, 3])
    values = d.predict().to_numpy()
    raw = d.regressor_.predict(_windows_of(airline.to_numpy(), L)[[-4, -3]][..., None])
    np.testing.assert_allclose(values[:2], raw.reshape(2, 3)[:, 1])
    assert np.all(np.isfinite(values))


def test_multivariate_series_and_exogenous_data():
    y, X = load_longley()
    target = y.to_frame().assign(POP=X["POP"])       # two columns to forecast
    exog = X.drop(columns="POP")
    train, test = slice(0, 12), slice(12, 16)
    f = LSTMForecaster(window_length=3, **SMALL).fit(target.iloc[train], X=exog.iloc[train],
                                                     fh=[1, 2])
    forecast = f.predict(X=exog.iloc[test])
    assert forecast.shape == (2, 2) and list(forecast.columns) == ["TOTEMP", "POP"]
    assert f.regressor_.network_.lstm.input_size == 2 + exog.shape[1]
    # Recursive: the appended rows read the future exogenous values that predict gets.
    r = LSTMForecaster(window_length=3, strategy="recursive", **SMALL).fit(
        target.iloc[train], X=exog.iloc[train])
    with_future = r.predict(fh=[1, 2, 3], X=exog.iloc[test])
    without = r.predict(fh=[1, 2, 3])      # the last observed X, held
    np.testing.assert_allclose(with_future.iloc[0], without.iloc[0])   # step 1: observed X
    assert not np.allclose(with_future.iloc[2], without.iloc[2])
    with pytest.raises(ValueError, match="exogenous X"):
        r.update(target.iloc[test])


def test_update_moves_the_origin_and_optionally_trains(airline):
    train, new = airline.iloc[:-6], airline.iloc[-6:]
    f = LSTMForecaster(window_length=6, **SMALL).fit(train, fh=[1, 2])
    weights = f.regressor_.network_.lstm.flat_parameters.copy()
    f.update(new, update_params=False)
    np.testing.assert_array_equal(f.regressor_.network_.lstm.flat_parameters, weights)
    expected = f.regressor_.predict(airline.to_numpy()[-6:].reshape(1, 6, 1)).ravel()
    np.testing.assert_allclose(f.predict().to_numpy(), expected)
    assert f.predict().index[0] == airline.index[-1] + 1
    f.update(airline.iloc[-1:].set_axis([airline.index[-1] + 1]) * 1.01, update_params=True)
    assert not np.array_equal(f.regressor_.network_.lstm.flat_parameters, weights)


def test_update_with_data_seen_already_keeps_only_the_new_points(airline):
    # sktime's update may pass observations seen before (evaluate passes the whole
    # expanding window): the history must not hold them twice.
    def fitted():
        return LSTMForecaster(window_length=4, strategy="recursive", **SMALL).fit(
            airline.iloc[:100])

    new_only, with_seen = fitted(), fitted()
    new_only.update(airline.iloc[100:112])
    with_seen.update(airline.iloc[:112])
    assert len(with_seen._history) == len(new_only._history) == 112
    np.testing.assert_array_equal(with_seen.regressor_.network_.lstm.flat_parameters,
                                  new_only.regressor_.network_.lstm.flat_parameters)
    in_sample = -np.arange(111, -1, -1)
    np.testing.assert_array_equal(with_seen.predict(fh=in_sample).to_numpy(),
                                  new_only.predict(fh=in_sample).to_numpy())
    assert np.all(np.isnan(with_seen.predict(fh=in_sample).to_numpy()[:4]))
    # Nothing new at all: nothing changes.
    weights = with_seen.regressor_.network_.lstm.flat_parameters.copy()
    with_seen.update(airline.iloc[105:112])
    assert len(with_seen._history) == 112
    np.testing.assert_array_equal(with_seen.regressor_.network_.lstm.flat_parameters,
                                  weights)


def test_a_forecaster_pickled_before_the_history_kept_its_end_updates_once(airline):
    """An earlier version's pickle had no record of the history's end: its first update
    appended observations seen already. The end is taken from its forecast origin."""
    import pickle

    fitted = LSTMForecaster(window_length=4, strategy="recursive", **SMALL).fit(
        airline.iloc[:100])
    del fitted._history_cutoff  # as an earlier version pickled it
    old = pickle.loads(pickle.dumps(fitted))
    old.update(airline.iloc[:112], update_params=False)
    assert len(old._history) == 112
    assert old.cutoff[0] == airline.index[111]


def test_update_after_a_gap_says_which_points_are_missing(airline):
    f = LSTMForecaster(window_length=4, strategy="recursive", **SMALL).fit(
        airline.iloc[:100])
    with pytest.raises(ValueError, match=r"3 time point\(s\) are missing, from 1957-05"):
        f.update(airline.iloc[103:104], update_params=False)
    assert len(f._history) == 100 and f.cutoff[0] == airline.index[99]
    assert f.predict(fh=[1]).index[0] == airline.index[100]


def test_update_of_old_observations_only_keeps_the_forecast_origin(airline):
    f = LSTMForecaster(window_length=4, strategy="recursive", **SMALL).fit(
        airline.iloc[:100])
    before = f.predict(fh=[1])
    f.update(airline.iloc[80:90])  # seen already, and ending before the history's end
    assert f.cutoff[0] == airline.index[99]
    pd.testing.assert_series_equal(f.predict(fh=[1]), before)


def test_update_sees_gaps_in_a_daily_index_without_a_set_frequency():
    # An index read from a file usually has no freq; sktime infers it at fit.
    index = pd.DatetimeIndex(pd.date_range("2000-01-01", periods=60, freq="D").to_numpy())
    assert index.freq is None
    y = pd.Series(np.sin(np.arange(60) / 3.0), index=index)
    f = LSTMForecaster(window_length=4, strategy="recursive", **SMALL).fit(y.iloc[:40])
    with pytest.raises(ValueError, match=r"3 time point\(s\) are missing, from 2000-02-10"):
        f.update(y.iloc[43:45], update_params=False)
    f.update(y.iloc[40:45], update_params=False)
    with pytest.raises(ValueError, match=r"2 time point\(s\) are missing, from 2000-02-15"):
        f.update(y.iloc[47:50], update_params=False)
    assert len(f._history) == 45 and f.cutoff[0] == index[44]


def test_forecaster_refuses_bad_settings(airline):
    with pytest.raises(ValueError, match="strategy"):
        LSTMForecaster(strategy="sideways").fit(airline, fh=[1])
    with pytest.raises(ValueError, match="window_length"):
        LSTMForecaster(window_length=0).fit(airline, fh=[1])
    with pytest.raises(ValueError, match="need at least"):
        LSTMForecaster(window_length=10, **SMALL).fit(airline.iloc[:11], fh=[1, 2])


# ------------------------------------------------------ sktime's tools around them
def test_grid_search_pipeline_and_evaluate(airline):
    pipe = TransformedTargetForecaster([
        ("diff", Differencer(lags=1)),
        ("lstm", LSTMForecaster(window_length=6, **SMALL)),
    ])
    search = ForecastingGridSearchCV(
        pipe, cv=SlidingWindowSplitter(window_length=100, step_length=20, fh=[1, 2]),
        param_grid={"lstm__window_length": [4, 8]})
    search.fit(airline, fh=[1, 2])
    assert search.best_params_["lstm__window_length"] in (4, 8)
    assert np.all(np.isfinite(search.predict().to_numpy()))
    results = evaluate(LSTMForecaster(window_length=6, **SMALL), y=airline,
                       cv=ExpandingWindowSplitter(initial_window=120, step_length=12,
                                                  fh=[1, 2, 3]))
    assert len(results) == 2
    assert np.all(np.isfinite(results.iloc[:, 0]))


def test_conformal_intervals_wrap_the_forecaster(airline):
    from sktime.forecasting.conformal import ConformalIntervals

    wrapped = ConformalIntervals(
        LSTMForecaster(window_length=6, strategy="recursive", **SMALL),
        initial_window=110, sample_frac=0.2, method="conformal")
    wrapped.fit(airline, fh=[1, 2])
    intervals = wrapped.predict_interval(coverage=0.9)
    lower = intervals.xs("lower", axis=1, level=-1).to_numpy()
    upper = intervals.xs("upper", axis=1, level=-1).to_numpy()
    point = wrapped.predict().to_numpy().reshape(-1, 1)
    assert np.all(lower < point) and np.all(point < upper)


@pytest.mark.parametrize("name, old_value", [("output_dropout", 0.0),
                                             ("input_scaling", "channel")])
def test_an_old_wrapper_pickle_loads_with_the_values_it_was_trained_with(name, old_value):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2, 6)), np.array([0, 1] * 6)
    clf = LSTMTimeSeriesClassifier(**SMALL).fit(X, y)
    state = clf.__dict__.copy()
    del state[name]  # as an earlier version pickled it
    old = LSTMTimeSeriesClassifier.__new__(LSTMTimeSeriesClassifier)
    old.__setstate__(state)
    assert old.get_params()[name] == old_value
    np.testing.assert_array_equal(old.predict(X), clf.predict(X))
