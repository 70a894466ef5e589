"""An LSTM forecaster on sktime's ``BaseForecaster``."""

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from ..estimators import LSTMRegressor

__all__ = ["LSTMForecaster"]

_STRATEGIES = ("direct", "recursive")
#: Solvers that can train an already fitted network further (``partial_fit``).
_INCREMENTAL_SOLVERS = ("adam", "sgd")


def _with_frequency(index, like):
    """``index`` with the frequency of ``like`` where it has none (a DatetimeIndex without
    ``freq``, as slicing a longer one without a set frequency gives)."""
    frequency = getattr(like, "freq", None)
    if isinstance(index, pd.DatetimeIndex) and index.freq is None and frequency is not None:
        return pd.DatetimeIndex(index, freq=frequency)
    return index


class LSTMForecaster(BaseForecaster):
    """Forecast a series with an LSTM reading the last ``window_length`` observations.

    The series is cut into training sequences: each window of ``window_length``
    consecutive observations (every column of ``y``, and of the exogenous ``X`` when
    given) is one input sequence of a :class:`numlstm.LSTMRegressor`, and the values that
    follow it are its targets.

    * ``strategy="direct"`` (default): one network with one output per step of the
      horizon and column of ``y`` (a multi-output head), so every step is forecast from
      observed data only. Needs ``fh`` in ``fit``, and ``predict`` forecasts that ``fh``.
    * ``strategy="recursive"``: one network forecasting the next step, applied again on
      its own forecasts for later steps. Any ``fh`` at ``predict``. With exogenous ``X``,
      the rows a recursive forecast appends take ``X`` from the ``X`` given to
      ``predict`` where it covers their time point, else its last observed values.

    The network sees the series standardised (per column, inside the regressor), so a
    trend is best removed first, e.g. with sktime's ``Differencer`` or ``Detrender`` in a
    ``TransformedTargetForecaster``; a log transform suits multiplicative seasonality.

    Parameters
    ----------
    window_length : int, default=12
        Observations each forecast reads. At least ``window_length`` + the longest
        horizon (direct) or + 1 (recursive) observations are needed to fit.
    strategy : {"direct", "recursive"}, default="direct"
        How forecasts beyond one step are made (above).
    hidden_size, num_layers, cell, max_iter, learning_rate_init, alpha, dropout, \
batch_size, early_stopping, random_state
        Parameters of the :class:`numlstm.LSTMRegressor` inside, same defaults.
    regressor_params : dict, optional
        Any other :class:`numlstm.LSTMRegressor` parameter, e.g. ``{"solver": "lbfgs"}``.

    Attributes
    ----------
    regressor_ : numlstm.LSTMRegressor
        The fitted network.

    Notes
    -----
    **In-sample forecasts** (``fh`` at or before the cutoff) are the model's own
    forecasts of the observed points, each made from the window that ends ``s`` steps
    before it, with ``s`` the shortest lead the model forecasts (1 for the recursive
    strategy, the smallest step of ``fh`` after the cutoff for the direct one, or 1
    if ``fh`` has none). The first
    ``window_length + s - 1`` observations have no such window: their in-sample
    forecasts are NaN.

    **Updating**: ``update(y_new, update_params=False)`` moves the forecast origin to the
    end of ``y_new``; later forecasts read the newest observations. With
    ``update_params=True`` (sktime's default) the network also trains further, with one
    pass of ``partial_fit``, on the windows whose targets lie in the new data (or, for the
    ``"lbfgs"`` solver and for an ensemble, ``regressor_params={"n_ensemble": k}``, which
    cannot continue a fit, it is refitted on all data seen).
    The forecaster keeps the observations it has seen itself, so this holds whatever
    sktime's ``remember_data`` setting.

    **Prediction intervals** are not produced by the network itself, which gives no
    calibrated uncertainty. sktime's ``ConformalIntervals`` wrapper adds intervals to it
    from the errors of refits on sliding windows of the training series (split
    conformal prediction; the intervals are as honest as that calibration).

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from numlstm.sktime import LSTMForecaster
    >>> y = load_airline()
    >>> forecaster = LSTMForecaster(window_length=24, max_iter=20, random_state=0)
    >>> forecaster = forecaster.fit(y, fh=[1, 2, 3])
    >>> forecaster.predict().shape
    (3,)
    """

    _tags = {
        "authors": ["numlstm developers"],
        "python_dependencies": "numlstm",
        # Multivariate y is one network with an output per column (the tag's name in
        # sktime's newer and older releases).
        "capability:multivariate": True,
        "scitype:y": "both",
        "y_inner_mtype": "pd.DataFrame",
        "X_inner_mtype": "pd.DataFrame",
        "capability:exogenous": True,
        "requires-fh-in-fit": True,
        "capability:missing_values": False,
        "capability:insample": True,
        "capability:update": True,
        "capability:pred_int": False,
        "capability:pred_int:insample": False,
        "capability:random_state": True,
        "property:randomness": "derandomized",
    }

    def __init__(self, window_length=12, strategy="direct", hidden_size=32, num_layers=1,
                 cell="lstm", max_iter="auto", learning_rate_init=0.005, alpha=0.0001,
                 dropout=0.0, batch_size="auto", early_stopping=False, random_state=None,
                 regressor_params=None):
        self.window_length = window_length
        self.strategy = strategy
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.dropout = dropout
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.regressor_params = regressor_params
        super().__init__()
        if strategy == "recursive":
            self.set_tags(**{"requires-fh-in-fit": False})

    # ------------------------------------------------------------------ helpers
    def _check_parameters(self):
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}")
        if isinstance(self.window_length, bool) or not isinstance(
                self.window_length, (int, np.integer)) or self.window_length < 1:
            raise ValueError(f"window_length must be a positive int, got "
                             f"{self.window_length!r}")

    def _regressor(self):
        params = dict(hidden_size=self.hidden_size, num_layers=self.num_layers,
                      cell=self.cell, max_iter=self.max_iter,
                      learning_rate_init=self.learning_rate_init, alpha=self.alpha,
                      dropout=self.dropout, batch_size=self.batch_size,
                      early_stopping=self.early_stopping, random_state=self.random_state,
                      # one network, which update() trains further with partial_fit
                      n_ensemble=1,
                      # the windows overlap, and each is standardised alike
                      input_scaling="channel")
        params.update(self.regressor_params or {})
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = params["random_state"].randint(2**31 - 1)
        return LSTMRegressor(**params)

    def _features(self, y, X):
        """(n_timepoints, n_features): the columns of ``y`` then the exogenous columns
        seen in ``fit`` (none if ``fit`` had no ``X``)."""
        values = y.to_numpy(dtype=np.float64)
        if self._exogenous_columns is None:
            return values
        if X is None:
            raise ValueError("this forecaster was fitted with exogenous X: pass X for the "
                             "new observations too")
        exogenous = X.loc[y.index, self._exogenous_columns]
        return np.hstack([values, exogenous.to_numpy(dtype=np.float64)])

    def _windows(self, features):
        """Training sequences of ``features`` and the targets that follow each.

        Returns ``inputs`` (n_windows, window_length, n_features) and ``targets``
        (n_windows, n_ahead * n_columns): the ``n_ahead`` rows of ``y`` after each window,
        flattened step-major. ``n_windows`` may be 0.
        """
        L = int(self.window_length)
        n_windows = max(len(features) - L - self._n_ahead + 1, 0)
        windows = np.lib.stride_tricks.sliding_window_view(features, L, axis=0)
        inputs = np.ascontiguousarray(windows[:n_windows].transpose(0, 2, 1))
        values = features[:, :self._n_columns]
        following = np.stack([values[L + h:L + h + n_windows] for h in range(self._n_ahead)],
                             axis=1)
        return inputs, following.reshape(n_windows, self._n_ahead * self._n_columns)

    def _leads(self, steps, X):
        """Forecasts of ``steps`` (relative to the cutoff, each >= 1) from the newest
        window, as an array (len(steps), n_columns); ``X`` is ``predict``'s."""
        if self.strategy == "direct":
            missing = ~np.isin(steps, self._horizon)
            if np.any(missing):
                raise ValueError(
                    f"the direct strategy forecasts the steps of the fh given to fit "
                    f"({self._horizon.tolist()}) only, not {steps[missing].tolist()}; refit "
                    f"with this fh, or use strategy='recursive'")
            return self._direct(self._history[None, -int(self.window_length):])[0][steps - 1]
        return self._recursive(int(steps.max()), X)[steps - 1]

    def _direct(self, windows):
        """Every lead of the direct network for each window: (n, n_ahead, n_columns)."""
        raw = self.regressor_.predict(windows)
        return np.asarray(raw).reshape(len(windows), self._n_ahead, self._n_columns)

    def _recursive(self, n_steps, X):
        """Forecasts of steps 1..n_steps, each appended to the window read by the next."""
        window = self._history[-int(self.window_length):].copy()
        exogenous = self._future_exogenous(n_steps, X)
        forecasts = np.empty((n_steps, self._n_columns))
        for step in range(n_steps):
            forecasts[step] = np.ravel(self.regressor_.predict(window[None]))
            row = np.concatenate([forecasts[step], exogenous[step]])
            window = np.vstack([window[1:], row])
        return forecasts

    def _future_exogenous(self, n_steps, X):
        """Exogenous rows of steps 1..n_steps: from the ``X`` passed to ``predict`` where it
        has them, else the last observed row (what is known at the forecast origin)."""
        last = self._history[-1, self._n_columns:]
        rows = np.tile(last, (n_steps, 1))
        if X is not None and rows.shape[1]:
            index = ForecastingHorizon(np.arange(1, n_steps + 1), is_relative=True
                                       ).to_absolute_index(self.cutoff)
            known = X[self._exogenous_columns].reindex(index).to_numpy(dtype=np.float64)
            rows = np.where(np.isnan(known), rows, known)
        return rows

    def _in_sample(self, steps):
        """The model's forecasts of observed points ``steps`` (relative, each <= 0), made
        from the window ending ``lead`` steps before each; NaN where there is none."""
        L = int(self.window_length)
        lead = 1 if self.strategy == "recursive" else int(self._horizon.min())
        # Row of the history each in-sample point is; its window ends `lead` rows earlier.
        rows = len(self._history) - 1 + steps
        ends = rows - lead
        usable = ends - L + 1 >= 0
        values = np.full((len(steps), self._n_columns), np.nan)
        if np.any(usable):
            windows = np.stack([self._history[end - L + 1:end + 1] for end in ends[usable]])
            if self.strategy == "direct":
                values[usable] = self._direct(windows)[:, lead - 1]
            else:
                raw = np.asarray(self.regressor_.predict(windows))
                values[usable] = raw.reshape(len(windows), self._n_columns)
        return values

    # --------------------------------------------------------------- protocol
    def _fit(self, y, X=None, fh=None):
        self._check_parameters()
        L = int(self.window_length)
        self._n_ahead = 1
        if self.strategy == "direct":
            steps = np.asarray(fh.to_relative(self.cutoff), dtype=np.int64)
            # In-sample steps of fh are served by the shortest lead (see Notes); an fh
            # of in-sample steps only trains the one-step lead for them.
            ahead = steps[steps >= 1]
            self._horizon = ahead if len(ahead) else np.array([1], dtype=np.int64)
            self._n_ahead = int(self._horizon.max())
        self._n_columns = y.shape[1]
        self._y_columns = y.columns
        self._exogenous_columns = None if X is None else X.columns
        self._history = self._features(y, X)
        # sktime's cutoff: the last time point, with the frequency sktime inferred (an index
        # read from a file often has none), which later updates need to see gaps.
        self._history_cutoff = self.cutoff
        if len(y) < L + self._n_ahead:
            raise ValueError(
                f"the series has {len(y)} observations; window_length={L} and a horizon "
                f"of {self._n_ahead} step(s) need at least {L + self._n_ahead}")
        self.regressor_ = self._regressor().fit(*self._windows(self._history))
        return self

    def _predict(self, fh, X=None):
        steps = np.asarray(fh.to_relative(self.cutoff), dtype=np.int64)
        values = np.empty((len(steps), self._n_columns))
        ahead = steps >= 1
        if np.any(ahead):
            values[ahead] = self._leads(steps[ahead], X)
        if np.any(~ahead):
            values[~ahead] = self._in_sample(steps[~ahead])
        index = fh.to_absolute_index(self.cutoff)
        return pd.DataFrame(values, index=index, columns=self._y_columns)

    def _unseen(self, y):
        """The rows of ``y`` after the last observation the history holds, checked to
        follow it without a gap. sktime lets ``update`` pass data seen already (its
        ``evaluate`` passes the whole expanding window); kept twice, or with a gap closed
        up, the history would no longer line up with the time index."""
        end = getattr(self, "_history_cutoff", None)
        if end is None:  # pickled before the history recorded its end
            return y
        y = y.loc[y.index > end[0]]
        if len(y) == 0:
            return y
        try:
            steps = np.asarray(ForecastingHorizon(y.index, is_relative=False)
                               .to_relative(end), dtype=np.int64)
        except (TypeError, ValueError):  # an index without a regular step
            return y
        expected = np.arange(1, len(y) + 1)
        if not np.array_equal(steps, expected):
            missing = np.setdiff1d(np.arange(1, steps.max() + 1), steps)
            first = ForecastingHorizon(missing[:1], is_relative=True).to_absolute_index(end)
            # sktime has moved the forecast origin already: back to the history's end, so
            # that forecasts after the error still read the newest observations.
            self._set_cutoff(end)
            raise ValueError(
                f"update got observations that do not follow the last one this forecaster "
                f"has seen ({end[0]}) without a gap: {len(missing)} time point(s) are "
                f"missing, from {first[0]}. Pass the missing observations too, or fit "
                f"again on the whole series.")
        return y

    def __setstate__(self, state):
        if "_history" in state and "_history_cutoff" not in state and (
                state.get("_cutoff") is not None):
            # Pickled before the history recorded its end. The forecast origin was then
            # the history's last time point (fit and each update moved both together).
            state = {**state, "_history_cutoff": state["_cutoff"]}
        restore = getattr(super(), "__setstate__", None)
        if restore is not None:
            restore(state)
        else:
            self.__dict__.update(state)

    def _update(self, y, X=None, update_params=True):
        y = self._unseen(y)
        if hasattr(self, "_history_cutoff"):
            if len(y):
                self._history_cutoff = _with_frequency(y.index[-1:], self._history_cutoff)
            # sktime moved the forecast origin to the end of y, which may lie before the
            # history's end (observations seen already): forecasts start after the history.
            self._set_cutoff(self._history_cutoff)
        if len(y) == 0:
            return self
        new = self._features(y, X)
        # What the new windows need before the new rows: a window and the steps before
        # its first target.
        context = int(self.window_length) + self._n_ahead - 1
        recent = np.vstack([self._history[-context:], new])
        self._history = np.vstack([self._history, new])
        if not update_params:
            return self
        solver = (self.regressor_params or {}).get("solver", "adam")
        if solver in _INCREMENTAL_SOLVERS and len(self.regressor_.networks_) == 1:
            inputs, targets = self._windows(recent)
            if len(inputs):
                self.regressor_.partial_fit(inputs, targets)
        else:
            self.regressor_ = self._regressor().fit(*self._windows(self._history))
        return self

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks."""
        return [
            {"window_length": 3, "hidden_size": 4, "max_iter": 2, "batch_size": 8,
             "random_state": 0},
            {"window_length": 2, "strategy": "recursive", "hidden_size": 3, "cell": "gru",
             "max_iter": 2, "batch_size": 8, "random_state": 1},
        ]
