"""The LSTM layer of the research API."""

import numbers

import numpy as np

from .._utils.docstrings import fill_shared_sections
from .recurrent import RecurrentLayer, _check_positive_int

__all__ = ["LSTM"]


@fill_shared_sections
class LSTM(RecurrentLayer):
    """Multi-layer long short-term memory network, forward and backward on NumPy arrays.

    Computes, for every layer and direction and every timestep ``t``::

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    with the weight layout, gate order and state-dict keys of PyTorch's ``nn.LSTM``
    (``batch_first=True``), so weights move between the two unchanged.

    With ``proj_size = P > 0`` (PyTorch's LSTM with projections, Sak et al., 2014)
    ``h_t = W_hr (o_t * tanh(c_t))`` has P features: ``weight_hh`` is (4H, P), each layer and
    direction has ``weight_hr_l{k}[_reverse]`` (P, H), ``out`` and ``h`` have P features per
    direction and ``c`` keeps H. With ``peephole=True`` (Gers and Schmidhuber, 2000) the
    gates also see the cell state through diagonal weights::

        i_t = sigmoid(... + w_ci * c_{t-1})
        f_t = sigmoid(... + w_cf * c_{t-1})
        o_t = sigmoid(... + w_co * c_t)

    held in ``weight_ci_l{k}``, ``weight_cf_l{k}``, ``weight_co_l{k}`` (``_reverse`` for the
    second direction), each of shape (H,), after the biases in the state dict. PyTorch has
    no peephole LSTM, so such a layer cannot be converted to ``torch.nn.LSTM``.

    Parameters
    ----------
    %(layer_size_parameters)s
    %(layer_direction_parameters)s
    forget_bias : float or None, default=1.0
        Initial value of the forget-gate bias (``bias_ih`` rows ``H:2H``; the matching
        ``bias_hh`` rows start at 0). A forget gate that starts open lets gradients flow
        over long sequences from the first epoch (Gers et al., 2000; Jozefowicz et al.,
        2015). ``None`` keeps PyTorch's uniform initialisation.
    random_state : int, numpy Generator or RandomState, default=None
        Seeds weight initialisation and dropout masks.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the kernels run; ``"auto"`` picks CUDA when a GPU is usable.
    proj_size : int, default=0
        Size ``P`` of the projected hidden state; 0 for none. Must be smaller than
        ``hidden_size``, as in PyTorch.
    peephole : bool, default=False
        Add peephole connections.
    %(layer_input_dropout_parameter)s

    Attributes
    ----------
    cell : str
        ``"lstm"``.
    n_states : int
        2: the hidden state ``h`` and the cell state ``c``.
    state_size : int
        Features of ``h`` per layer and direction (``proj_size`` or ``hidden_size``).
    output_size : int
        Features per step of ``out``: ``num_directions * state_size``.
    num_directions : int
        1, or 2 when bidirectional.
    training : bool
        Whether dropout is active; see :meth:`train` and :meth:`eval`.
    flat_parameters : ndarray of shape (n_parameters,)
        Every weight in one vector; :meth:`parameters` returns views into it.
    flat_gradient : ndarray of shape (n_parameters,)
        Gradient of every weight after :meth:`backward`, laid out like ``flat_parameters``.

    See Also
    --------
    GRU, RNN : The other recurrent cells, with the same interface.

    Notes
    -----
    Ragged batches follow PyTorch's packed sequences: with ``lengths``, row ``b`` is
    processed for its first ``lengths[b]`` steps only; outputs are zero after that, padded
    steps leave the state untouched and receive no gradient, ``h_n``/``c_n`` hold each
    sequence's state at its own last step, and the reverse direction starts at that step.

    References
    ----------
    Hochreiter, S. and Schmidhuber, J. (1997). Long short-term memory. Neural Computation,
    9(8), 1735-1780.

    Gers, F. A. and Schmidhuber, J. (2000). Recurrent nets that time and count. IJCNN 2000.

    Sak, H., Senior, A. and Beaufays, F. (2014). Long short-term memory recurrent neural
    network architectures for large scale acoustic modeling. Interspeech 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import LSTM
    >>> layer = LSTM(3, 8, num_layers=2, bidirectional=True, dtype=np.float64,
    ...              random_state=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 10, 3))
    >>> out, (h_n, c_n) = layer.forward(x, lengths=[10, 7, 3, 1])
    >>> out.shape, h_n.shape
    ((4, 10, 16), (4, 4, 8))
    >>> grads, dx = layer.backward(np.ones_like(out))
    >>> grads["weight_hh_l1_reverse"].shape
    (32, 8)
    """

    cell = "lstm"
    n_states = 2
    _n_gates = 4
    _torch_name = "torch.nn.LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dropout=0.0, dtype=np.float32, forget_bias=1.0, random_state=None,
                 device="cpu", proj_size=0, peephole=False, input_dropout=0.0):
        hidden_size = _check_positive_int(hidden_size, "hidden_size")
        if isinstance(proj_size, (bool, np.bool_)) or not isinstance(proj_size,
                                                                     numbers.Integral):
            raise TypeError(f"proj_size must be an int, got {type(proj_size).__name__}")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be 0 (no projection) or in [1, hidden_size), "
                             f"got proj_size={proj_size} with hidden_size={hidden_size}")
        self.proj_size = int(proj_size)
        self.peephole = bool(peephole)
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, dtype,
                         random_state, device, input_dropout)
        self.reset_parameters(forget_bias)

    @property
    def _proj_size(self):
        return self.proj_size

    @property
    def _peephole(self):
        return self.peephole

    def _state_sizes(self):
        return (self.state_size, self.hidden_size)

    def _kernel_weights(self, layer):
        bias, spec = super()._kernel_weights(layer)
        if self.peephole:
            spec.peephole = self._stacked[f"weight_peephole_l{layer}"]
        if self.proj_size:
            spec.W_hr = self._stacked[f"weight_hr_l{layer}"]
        return bias, spec

    def reset_parameters(self, forget_bias=1.0):
        """Draw new weights: uniform in ``±1/sqrt(hidden_size)``, then the forget bias.

        Parameters
        ----------
        forget_bias : float or None, default=1.0
            See the class docstring.
        """
        self._draw_parameters()
        if forget_bias is not None:
            H = self.hidden_size
            for k in range(self.num_layers):
                self._stacked[f"bias_ih_l{k}"][:, H:2 * H] = forget_bias
                self._stacked[f"bias_hh_l{k}"][:, H:2 * H] = 0.0

    def state_dict(self):
        """Return a dict of weight copies with the keys and shapes of ``nn.LSTM`` (plus the
        peephole weights, see the class docstring)."""
        return super().state_dict()

    def forward(self, x, h0=None, c0=None, lengths=None, *, requires_grad=True):
        """Run the network over a batch of sequences.

        Parameters
        ----------
        x : array-like of shape (batch, time, input_size)
        h0 : array-like of shape (num_layers * num_directions, batch, state_size), optional
            Initial hidden state; zeros when omitted.
        c0 : array-like of shape (num_layers * num_directions, batch, hidden_size), optional
            Initial cell state; zeros when omitted.
        lengths : array-like of int, shape (batch,), optional
            Valid steps of each sequence, in ``[1, time]``; the rest is padding.
        requires_grad : bool, default=True
            Keep what :meth:`backward` needs. ``False`` runs a cheaper inference path.

        Returns
        -------
        out : ndarray of shape (batch, time, num_directions * state_size)
            Last layer's hidden state at each step, zero at padded steps.
        (h_n, c_n) : ndarrays
            Final hidden and cell states of every layer and direction, shaped like ``h0``
            and ``c0``.
        """
        out, (h_n, c_n) = self.forward_states(x, (h0, c0), lengths,
                                              requires_grad=requires_grad)
        return out, (h_n, c_n)

    def backward(self, d_out, d_h_n=None, d_c_n=None, *, input_gradient=True):
        """Backpropagate through the last :meth:`forward` call.

        Parameters
        ----------
        d_out : array-like of shape (batch, time, num_directions * state_size)
            Gradient of the loss w.r.t. ``out`` (entries at padded steps are ignored).
        d_h_n, d_c_n : array-likes shaped like ``h_n`` and ``c_n``, optional
            Gradients w.r.t. the final states; zero when omitted.
        input_gradient : bool, default=True
            Whether to compute ``dx``; ``False`` returns ``None`` in its place and skips
            its product (see :meth:`backward_states`).

        Returns
        -------
        grads : dict
            Gradient of every weight, keyed like :meth:`state_dict` (views into
            :attr:`flat_gradient`), plus ``"h0"`` and ``"c0"`` when ``forward`` was given
            initial states.
        dx : ndarray like ``x``, or None
            Gradient w.r.t. the input.
        """
        return self.backward_states(d_out, (d_h_n, d_c_n), input_gradient=input_gradient)

    @classmethod
    def from_torch(cls, module, **kwargs):
        """Build an LSTM with the weights of a ``torch.nn.LSTM(batch_first=True)``.

        Keyword arguments (``dtype``, ``device``, ``random_state``, ``require_batch_first``)
        and checks are those of :func:`numlstm.io.pytorch.lstm_from_torch`.

        Returns
        -------
        layer : LSTM
        """
        return super().from_torch(module, **kwargs)

    def to_torch(self):
        """Return a ``torch.nn.LSTM(batch_first=True)`` holding copies of these weights.

        See :func:`numlstm.io.pytorch.lstm_to_torch`.
        """
        return super().to_torch()

    def __setstate__(self, state):
        # Layers pickled before the LSTM options existed have neither attribute.
        state.setdefault("proj_size", 0)
        state.setdefault("peephole", False)
        super().__setstate__(state)

    def _repr_extra(self):
        extra = ""
        if self.proj_size:
            extra += f", proj_size={self.proj_size}"
        if self.peephole:
            extra += ", peephole=True"
        return extra
