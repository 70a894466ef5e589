"""Recurrent cells and LSTM options on device="cuda" (CUDA simulator unless a GPU is asked
for): refused with a clear error where the CUDA backend does not run them."""

import numpy as np
import pytest

from numlstm import GRU, LSTM, RNN

pytestmark = pytest.mark.cudasim


@pytest.mark.parametrize("make", [lambda: GRU(3, 4, device="cuda"),
                                  lambda: RNN(3, 4, device="cuda"),
                                  lambda: RNN(3, 4, nonlinearity="relu", device="cuda"),
                                  lambda: LSTM(3, 4, proj_size=2, device="cuda"),
                                  lambda: LSTM(3, 4, peephole=True, device="cuda")],
                         ids=["gru", "rnn_tanh", "rnn_relu", "lstm_proj", "lstm_peephole"])
def test_unsupported_layers_are_refused(make):
    with pytest.raises(NotImplementedError, match="device='cpu'"):
        make()


def test_plain_lstm_still_runs():
    layer = LSTM(3, 4, dtype=np.float64, device="cuda", random_state=0)
    out, (h_n, c_n) = layer.forward(np.ones((2, 3, 3)))
    assert out.shape == (2, 3, 4) and c_n.shape == (1, 2, 4)
