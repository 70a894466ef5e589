"""The plain (Elman) RNN layer of the research API."""

import numpy as np

from .._utils.docstrings import fill_shared_sections
from .recurrent import SingleStateLayer

__all__ = ["RNN"]


@fill_shared_sections
class RNN(SingleStateLayer):
    """Multi-layer Elman recurrent network, forward and backward on NumPy arrays.

    Computes, for every layer and direction and every timestep ``t``::

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    with ``act`` tanh or ReLU, and the weight layout and state-dict keys of PyTorch's
    ``nn.RNN`` (``batch_first=True``), so weights move between the two unchanged.

    Parameters
    ----------
    %(layer_size_parameters)s
    nonlinearity : {"tanh", "relu"}, default="tanh"
        The activation ``act`` (third positional parameter, as in PyTorch).
    %(layer_direction_parameters)s
    %(layer_seed_and_device_parameters)s
    %(layer_input_dropout_parameter)s

    Attributes
    ----------
    cell : str
        ``"rnn"``.
    %(single_state_attributes)s

    See Also
    --------
    LSTM, GRU : Gated cells, with the same interface.

    Notes
    -----
    Ragged batches (``lengths``) follow PyTorch's packed sequences, as for :class:`LSTM`.

    References
    ----------
    Elman, J. L. (1990). Finding structure in time. Cognitive Science, 14(2), 179-211.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import RNN
    >>> layer = RNN(3, 8, nonlinearity="relu", bidirectional=True, dtype=np.float64,
    ...             random_state=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 10, 3))
    >>> out, h_n = layer.forward(x)
    >>> out.shape, h_n.shape
    ((4, 10, 16), (2, 4, 8))
    """

    cell = "rnn"
    n_states = 1
    _n_gates = 1
    _torch_name = "torch.nn.RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh",
                 bidirectional=False, dropout=0.0, dtype=np.float32, random_state=None,
                 device="cpu", input_dropout=0.0):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, dtype,
                         random_state, device, input_dropout)
        self.reset_parameters()

    @property
    def _kernel_cell(self):
        return "rnn_" + self.nonlinearity

    def _repr_extra(self):
        return ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
