"""The research API: recurrent layers, the network the estimators train, and the one
dispatch point choosing CPU or CUDA kernels.

* :class:`~numlstm.LSTM`, :class:`~numlstm.GRU`, :class:`~numlstm.RNN` -- layers with
  ``forward``, ``backward`` and a PyTorch-compatible state dict, sharing
  :class:`~numlstm.nn.recurrent.RecurrentLayer`;
* :class:`~numlstm.nn.network.LSTMNetwork` -- a recurrent layer with a dense head and a
  loss (:mod:`numlstm.nn.losses`);
* :mod:`numlstm.nn.backend` -- where the kernels run (CPU or CUDA);
* :mod:`numlstm.nn.torch_interop` -- weights to and from PyTorch modules.
"""

from .gru import GRU
from .lstm import LSTM
from .network import LSTMNetwork
from .recurrent import RecurrentLayer
from .rnn import RNN

__all__ = ["GRU", "LSTM", "LSTMNetwork", "RNN", "RecurrentLayer"]
