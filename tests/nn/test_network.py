"""LSTMNetwork's own checks: its arguments, ``load_state_dict`` and the layer's mode."""

import numpy as np
import pytest

from numlstm import LSTM
from numlstm.nn import LSTMNetwork


def network(seed, dtype=np.float64):
    lstm = LSTM(2, 3, num_layers=2, dropout=0.5, dtype=dtype, random_state=seed)
    return LSTMNetwork(lstm, 2, random_state=seed)


@pytest.mark.parametrize("entry,value,error,match", [
    ("output.weight", "x", TypeError, r"state_dict\['output.weight'\] must hold real"),
    ("output.weight", np.nan, ValueError, r"'output.weight'\] contains NaN"),
    ("output.bias", np.inf, ValueError, r"'output.bias'\] contains NaN"),
    ("output.bias", 1e39, ValueError, "beyond the range of this layer's dtype float32"),
])
def test_load_state_dict_refuses_bad_output_weights_and_changes_nothing(entry, value, error,
                                                                        match):
    net = network(0, np.float32)
    before = net.get_flat_params()
    state = network(1, np.float32).state_dict()
    state[entry] = np.full(np.shape(state[entry]), value)
    with pytest.raises(error, match=match):
        net.load_state_dict(state)
    # the recurrent weights were not loaded either
    np.testing.assert_array_equal(net.get_flat_params(), before)


def test_load_state_dict_names_missing_and_misshapen_output_entries():
    net = network(0)
    state = network(1).state_dict()
    with pytest.raises(KeyError, match=r"missing keys \['output.bias'\]"):
        net.load_state_dict({k: v for k, v in state.items() if k != "output.bias"})
    with pytest.raises(ValueError, match=r"'output.weight'\] has shape \(6,\)"):
        net.load_state_dict({**state, "output.weight": np.zeros(6)})
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.get_flat_params(), network(1).get_flat_params())


@pytest.mark.parametrize("mode", [True, False])
def test_loss_and_gradient_leaves_the_layer_mode_as_it_was(mode):
    """A validation loss (``training=False``) used to leave dropout off on the layer."""
    net = network(0)
    net.lstm.train(mode)
    X, Y = np.zeros((3, 4, 2)), np.zeros((3, 2))
    for training in (False, True):
        net.loss_and_gradient(X, Y, training=training)
        assert net.lstm.training is mode


@pytest.mark.parametrize("n_outputs,error", [(0, ValueError), (-1, ValueError),
                                             (2.7, TypeError), (True, TypeError)])
def test_n_outputs_is_checked(n_outputs, error):
    with pytest.raises(error, match="n_outputs"):
        LSTMNetwork(LSTM(2, 3), n_outputs)
