"""What a backend needs to know about a layer besides its main weights."""

__all__ = ["PLAIN_LSTM", "LayerSpec"]

#: The cells the kernels run.
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


class LayerSpec:
    """What a kernel needs to know about a layer besides its main weights.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn_tanh", "rnn_relu"}, default="lstm"
    bias_hn : ndarray (D, H), optional
        The GRU's ``b_hn`` (kept apart from the combined bias, see
        :mod:`numlstm.kernels.cpu.recurrent`).
    peephole : ndarray (D, 3, H), optional
        LSTM peephole weights of the i, f and o gates.
    W_hr : ndarray (D, P, H), optional
        LSTM projection weights.
    """

    __slots__ = ("cell", "bias_hn", "peephole", "W_hr")

    def __init__(self, cell="lstm", bias_hn=None, peephole=None, W_hr=None):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.bias_hn = bias_hn
        self.peephole = peephole
        self.W_hr = W_hr

    @property
    def has_cell_state(self):
        return self.cell == "lstm"


#: An LSTM without options.
PLAIN_LSTM = LayerSpec()
