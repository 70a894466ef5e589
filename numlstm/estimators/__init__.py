"""scikit-learn estimators built on :class:`numlstm.LSTM`.

- :class:`LSTMRegressor`: sequence-to-one and sequence-to-sequence regression.
- :class:`LSTMClassifier`: one label per sequence (binary or multiclass).
- :func:`load_checkpoint`: the estimator saved by a fit's ``checkpoint``.
- :class:`PredictionStream`: online predictions, made by the estimators' ``stream``.
"""

from ._base import TrainingDivergedError, load_checkpoint
from ._classifier import LSTMClassifier
from ._regressor import LSTMRegressor
from ._stream import PredictionStream

__all__ = ["LSTMClassifier", "LSTMRegressor", "PredictionStream", "TrainingDivergedError",
           "load_checkpoint"]
