"""Time-series classification and regression on sktime's base classes."""

from sktime.classification.base import BaseClassifier
from sktime.regression.base import BaseRegressor

from ..estimators import LSTMClassifier, LSTMRegressor
from ._layout import to_sequences
from ._parameters import TEST_PARAMS, NetworkParameters

__all__ = ["LSTMTimeSeriesClassifier", "LSTMTimeSeriesRegressor"]

_COLLECTION_TAGS = {
    "authors": ["numlstm developers"],
    "python_dependencies": "numlstm",
    # numlstm reads (time, features). sktime converts other types to the first inner
    # type, so df-list (one frame per series, time-major, any length) comes first.
    "X_inner_mtype": ["df-list", "numpy3D"],
    "capability:multivariate": True,
    "capability:unequal_length": True,
    "capability:missing_values": False,
    "capability:random_state": True,
    "property:randomness": "derandomized",
}


class LSTMTimeSeriesClassifier(NetworkParameters, BaseClassifier):
    """Time-series classification with numlstm's LSTM (or GRU / RNN), for sktime.

    A :class:`numlstm.LSTMClassifier` on sktime's data containers: any collection
    sktime accepts (``numpy3D`` of shape (n_instances, n_channels, n_timepoints), a
    pandas multi-index frame, nested frames, lists of series of unequal length...),
    converted to numlstm's (time, channels) layout. It works with sktime's pipelines,
    tuning and benchmarking.

    Parameters
    ----------
    hidden_size, num_layers, bidirectional, dropout, solver, learning_rate, \
learning_rate_init, momentum, nesterovs_momentum, beta_1, beta_2, epsilon, batch_size, \
max_iter, max_fun, alpha, clip_grad_norm, shuffle, early_stopping, validation_fraction, \
n_iter_no_change, tol, random_state, verbose, dtype, device, cell, readout, \
patch_length, n_ensemble, input_dropout, input_scaling, output_dropout
        As in :class:`numlstm.LSTMClassifier`, with the same defaults.

    Attributes
    ----------
    estimator_ : numlstm.LSTMClassifier
        The fitted numlstm estimator.
    classes_ : ndarray
        The class labels.

    Examples
    --------
    >>> from sktime.datasets import load_unit_test
    >>> from numlstm.sktime import LSTMTimeSeriesClassifier
    >>> X, y = load_unit_test(split="train", return_type="numpy3D")
    >>> clf = LSTMTimeSeriesClassifier(hidden_size=8, max_iter=5, random_state=0)
    >>> clf = clf.fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _tags = dict(_COLLECTION_TAGS, **{"capability:predict_proba": True})

    def _fit(self, X, y):
        self.estimator_ = self._inner(LSTMClassifier).fit(to_sequences(X), y)
        return self

    def _predict(self, X):
        return self.estimator_.predict(to_sequences(X))

    def _predict_proba(self, X):
        return self.estimator_.predict_proba(to_sequences(X))

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks."""
        return [dict(p) for p in TEST_PARAMS]


class LSTMTimeSeriesRegressor(NetworkParameters, BaseRegressor):
    """Time-series regression with numlstm's LSTM (or GRU / RNN), for sktime.

    A :class:`numlstm.LSTMRegressor` on sktime's data containers (see
    :class:`LSTMTimeSeriesClassifier`): one target value per series, or several (a 2-D
    ``y``: one network with an output per column).

    Parameters
    ----------
    hidden_size, num_layers, bidirectional, dropout, solver, learning_rate, \
learning_rate_init, momentum, nesterovs_momentum, beta_1, beta_2, epsilon, batch_size, \
max_iter, max_fun, alpha, clip_grad_norm, shuffle, early_stopping, validation_fraction, \
n_iter_no_change, tol, random_state, verbose, dtype, device, cell, readout, \
patch_length, n_ensemble, input_dropout, input_scaling, output_dropout
        As in :class:`numlstm.LSTMRegressor`, with the same defaults.

    Attributes
    ----------
    estimator_ : numlstm.LSTMRegressor
        The fitted numlstm estimator.

    Examples
    --------
    >>> from sktime.datasets import load_covid_3month
    >>> from numlstm.sktime import LSTMTimeSeriesRegressor
    >>> X, y = load_covid_3month(split="train")  # a nested data frame
    >>> reg = LSTMTimeSeriesRegressor(hidden_size=8, max_iter=5, random_state=0)
    >>> reg = reg.fit(X, y)
    >>> reg.predict(X.iloc[:3]).shape
    (3,)
    """

    # Several target columns train one network with several outputs, not one network
    # per column (sktime's vectorisation).
    _tags = dict(_COLLECTION_TAGS, **{"y_inner_mtype": ["numpy2D", "numpy1D"],
                                      "capability:multioutput": True})

    def _fit(self, X, y):
        self.estimator_ = self._inner(LSTMRegressor).fit(to_sequences(X), y)
        return self

    def _predict(self, X):
        return self.estimator_.predict(to_sequences(X))

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks."""
        return [dict(p) for p in TEST_PARAMS]
