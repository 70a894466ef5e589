"""numlstm's estimators as sktime estimators: time-series classification, regression and
forecasting with sktime's data containers, pipelines, tuning and evaluation.

sktime is an optional dependency (``pip install numlstm[sktime]``); ``import numlstm``
never imports it, and importing this module without it raises an ImportError saying what
to install.
"""

try:
    import sktime  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("numlstm.sktime needs sktime: pip install numlstm[sktime]") from exc

from .collection import LSTMTimeSeriesClassifier, LSTMTimeSeriesRegressor
from .forecasting import LSTMForecaster

__all__ = ["LSTMForecaster", "LSTMTimeSeriesClassifier", "LSTMTimeSeriesRegressor"]
