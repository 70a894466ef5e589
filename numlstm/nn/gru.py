"""The GRU layer of the research API."""

import numpy as np

from .._utils.docstrings import fill_shared_sections
from .layer_spec import LayerSpec
from .recurrent import SingleStateLayer

__all__ = ["GRU"]


@fill_shared_sections
class GRU(SingleStateLayer):
    """Multi-layer gated recurrent unit network, forward and backward on NumPy arrays.

    Computes, for every layer and direction and every timestep ``t``::

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    with the weight layout, gate order (r, z, n) and state-dict keys of PyTorch's
    ``nn.GRU`` (``batch_first=True``), so weights move between the two unchanged.

    Parameters
    ----------
    %(layer_size_parameters)s
    %(layer_direction_parameters)s
    %(layer_seed_and_device_parameters)s
    %(layer_input_dropout_parameter)s

    Attributes
    ----------
    cell : str
        ``"gru"``.
    %(single_state_attributes)s

    See Also
    --------
    LSTM, RNN : The other recurrent cells, with the same interface.

    Notes
    -----
    Ragged batches (``lengths``) follow PyTorch's packed sequences, as for :class:`LSTM`.

    References
    ----------
    Cho, K. et al. (2014). Learning phrase representations using RNN encoder-decoder for
    statistical machine translation. EMNLP 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import GRU
    >>> layer = GRU(3, 8, num_layers=2, dtype=np.float64, random_state=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 10, 3))
    >>> out, h_n = layer.forward(x, lengths=[10, 7, 3, 1])
    >>> out.shape, h_n.shape
    ((4, 10, 8), (2, 4, 8))
    >>> grads, dx = layer.backward(np.ones_like(out))
    >>> grads["weight_hh_l1"].shape
    (24, 8)
    """

    cell = "gru"
    n_states = 1
    _n_gates = 3
    _torch_name = "torch.nn.GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dropout=0.0, dtype=np.float32, random_state=None, device="cpu",
                 input_dropout=0.0):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, dtype,
                         random_state, device, input_dropout)
        self.reset_parameters()

    def _kernel_weights(self, layer):
        # The n gate's recurrent part is scaled by r, so b_hn stays apart from b_in.
        H = self.hidden_size
        b_ih = self._stacked[f"bias_ih_l{layer}"]
        b_hh = self._stacked[f"bias_hh_l{layer}"]
        bias = b_ih.copy()
        bias[:, :2 * H] += b_hh[:, :2 * H]
        spec = LayerSpec("gru", bias_hn=np.ascontiguousarray(b_hh[:, 2 * H:]))
        return bias, spec
