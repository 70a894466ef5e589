"""numlstm: Numba-accelerated LSTM kernels with a scikit-learn estimator API.

The layers of the package, from the bottom up:

* :mod:`numlstm.cpu_lstm` / :mod:`numlstm.gpu_lstm` -- forward and backward kernels
  (the forget gate is computed in ``cpu_lstm._forward_rows``);
* :mod:`numlstm._backend` -- the one dispatch point choosing CPU or CUDA;
* :class:`numlstm.LSTM`, :class:`numlstm.GRU`, :class:`numlstm.RNN` -- the research API
  (weights, forward, backward, state dict);
* :mod:`numlstm.optimizers` -- SGD and Adam;
* :class:`numlstm.LSTMRegressor`, :class:`numlstm.LSTMClassifier` -- estimators;
* :mod:`numlstm.datasets` -- synthetic sequence tasks (adding problem, copy task);
* :mod:`numlstm.io` (model files), :mod:`numlstm.interop` (PyTorch),
  :mod:`numlstm.plotting`, :mod:`numlstm.dask` (blocked prediction over Dask arrays).
"""

from . import datasets
from ._version import __version__
from .estimators import LSTMClassifier, LSTMRegressor, TrainingDivergedError
from .io import ModelFileError, load, save
from .layers import GRU, LSTM, RNN
from .plotting import plot_learning_curve

__all__ = ["GRU", "LSTM", "LSTMClassifier", "LSTMRegressor", "ModelFileError", "RNN",
           "TrainingDivergedError", "datasets", "load", "plot_learning_curve", "save",
           "__version__"]
