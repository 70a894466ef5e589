"""numlstm: Numba-accelerated LSTM kernels with a scikit-learn estimator API.

Each folder of the package is one layer and imports only from the layers below it
(``docs/architecture.rst``; ``tests/test_layering.py`` checks it). From the bottom up:

* :mod:`numlstm._utils` -- settings, input validation, memory checks, atomic files;
* :mod:`numlstm.kernels` -- the compiled forward and backward kernels, ``kernels.cpu``
  (numba ``@njit``) and ``kernels.cuda`` (``numba.cuda``); the forget gate is computed in
  :mod:`numlstm.kernels.cpu.cells` and its CUDA twin;
* :mod:`numlstm.nn` -- :class:`LSTM`, :class:`GRU`, :class:`RNN` (the research API:
  weights, forward, backward, state dict), the network the estimators train, and the one
  dispatch point choosing CPU or CUDA (:mod:`numlstm.nn.backend`);
* :mod:`numlstm.training` -- optimizers and the trainers that run a fit's steps;
* :class:`LSTMRegressor`, :class:`LSTMClassifier` (:mod:`numlstm.estimators`);
* :mod:`numlstm.io` -- model files, PyTorch interop and export to ONNX;
* the faces: :mod:`numlstm.datasets` (synthetic sequence tasks), :mod:`numlstm.plotting`,
  :mod:`numlstm.dask` (blocked prediction over Dask arrays).
"""

from . import _moved, datasets
from ._version import __version__
from .estimators import LSTMClassifier, LSTMRegressor, TrainingDivergedError
from .io import ModelFileError, load, save, to_onnx
from .nn import GRU, LSTM, RNN
from .plotting import plot_learning_curve

_moved.install()

__all__ = ["GRU", "LSTM", "LSTMClassifier", "LSTMRegressor", "ModelFileError", "RNN",
           "TrainingDivergedError", "datasets", "load", "plot_learning_curve", "save",
           "to_onnx", "__version__"]
