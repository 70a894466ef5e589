"""Speed of the scikit-learn estimators: one ``fit`` epoch and ``predict``.

A size ``(batch, timesteps, input, hidden)`` here means ``batch_size=batch`` and
``hidden_size=hidden`` on ``batch * BATCHES_PER_EPOCH`` sequences. Skipped (not failed)
while ``numlstm.LSTMRegressor`` / ``LSTMClassifier`` do not exist.
"""

from ._configs import (PARAM_NAMES, PARAMS, classification_data, estimator_classes,
                       make_estimator, quiet_fit, regression_data)


class _EstimatorBench:
    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 240
    kind = "regressor"

    def setup(self, size, dtype):
        regressor, classifier = estimator_classes()
        if self.kind == "regressor":
            self.cls, (self.X, self.y) = regressor, regression_data(size, dtype)
        else:
            self.cls, (self.X, self.y) = classifier, classification_data(size, dtype)
        self.size, self.dtype = size, dtype
        # Warm-up: compile / load the kernels, and keep a fitted model for predict.
        self.fitted = quiet_fit(make_estimator(self.cls, size, dtype), self.X, self.y)
        self.fitted.predict(self.X)

    def time_fit_epoch(self, size, dtype):
        """``fit`` with ``max_iter=1``: one pass over the data, validation included."""
        quiet_fit(make_estimator(self.cls, size, dtype), self.X, self.y)

    def time_predict(self, size, dtype):
        self.fitted.predict(self.X)


class Regressor(_EstimatorBench):
    kind = "regressor"


class Classifier(_EstimatorBench):
    kind = "classifier"
    params = [PARAMS[0][:2], ["float32"]]
