"""Dropout on the dense layer's input (``LSTMNetwork(output_dropout=...)``): the mask,
the gradient through it (finite differences with the same mask), and inference."""

import pickle

import numpy as np
import pytest

from numlstm import LSTM
from numlstm.nn import LSTMNetwork


def network(rate, readout="last", sequence_output=False, loss="squared_error"):
    lstm = LSTM(3, 4, bidirectional=True, dtype=np.float64, random_state=1)
    return LSTMNetwork(lstm, 2, loss=loss, sequence_output=sequence_output,
                       random_state=2, readout=readout, output_dropout=rate)


def batch(sequence_output, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, 6, 3))
    lengths = np.array([6, 4, 6, 2, 5])
    Y = rng.normal(size=(5, 6, 2) if sequence_output else (5, 2))
    return X, Y, lengths


def loss_with_stream(net, state, X, Y, lengths):
    """The loss with the layer's random stream set to ``state``: the same mask."""
    net.lstm._rng.bit_generator.state = state
    return net.loss_and_gradient(X, Y, lengths, alpha=0.01)


@pytest.mark.parametrize("readout, sequence_output", [
    ("last", False), ("mean_max", False), ("last", True)])
def test_gradient_through_the_mask_matches_finite_differences(readout, sequence_output):
    net = network(0.4, readout, sequence_output)
    X, Y, lengths = batch(sequence_output)
    state = net.lstm._rng.bit_generator.state
    loss_with_stream(net, state, X, Y, lengths)
    grads = np.concatenate([g.ravel() for g in net.grads])
    params = net.get_flat_params()
    rng = np.random.default_rng(3)
    # The dense layer's weights and some of the recurrent layer's.
    n_lstm = net.lstm.flat_parameters.size
    indices = np.concatenate([rng.choice(n_lstm, 12, replace=False),
                              n_lstm + np.arange(net.coef_.size + net.intercept_.size)])
    eps = 1e-6
    for i in indices:
        shifted = params.copy()
        shifted[i] += eps
        net.set_flat_params(shifted)
        up = loss_with_stream(net, state, X, Y, lengths)
        shifted[i] -= 2 * eps
        net.set_flat_params(shifted)
        down = loss_with_stream(net, state, X, Y, lengths)
        np.testing.assert_allclose((up - down) / (2 * eps), grads[i], rtol=1e-5, atol=1e-8,
                                   err_msg=f"parameter {i}")
    net.set_flat_params(params)


def test_training_masks_features_and_inference_does_not():
    dropping, plain = network(0.5), network(0.0)
    np.testing.assert_array_equal(dropping.get_flat_params(), plain.get_flat_params())
    X, Y, lengths = batch(False)
    # The mask is drawn from the layer's stream: draw it again from a copy, and compute
    # the loss with the features masked by hand.
    stream = np.random.default_rng()
    stream.bit_generator.state = dropping.lstm._rng.bit_generator.state
    loss = dropping.loss_and_gradient(X, Y, lengths)
    mask = (stream.random((5, 8)) < 0.5) / 0.5
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    out, (h_n, _) = plain.lstm.forward_states(X, lengths=lengths)
    features = np.concatenate(list(h_n[-2:]), axis=1)
    raw = (features * mask) @ plain.coef_ + plain.intercept_
    np.testing.assert_allclose(loss, 0.5 * np.mean((raw - Y) ** 2),
                               rtol=1e-12)
    assert loss != plain.loss_and_gradient(X, Y, lengths)
    np.testing.assert_array_equal(dropping.decision_function(X, lengths),
                                  plain.decision_function(X, lengths))
    # Evaluation mode (training=False) draws no mask: the same loss as without dropout.
    assert dropping.loss_and_gradient(X, Y, lengths, training=False) == \
        plain.loss_and_gradient(X, Y, lengths, training=False)


@pytest.mark.parametrize("rate", [-0.1, 1.0, "half"])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="output_dropout"):
        network(rate)


def test_the_rate_survives_pickling_and_old_pickles_get_none():
    net = network(0.25)
    assert pickle.loads(pickle.dumps(net)).output_dropout == 0.25
    state = net.__getstate__()
    del state["output_dropout"]  # a network pickled before the option existed
    old = LSTMNetwork.__new__(LSTMNetwork)
    old.__setstate__(state)
    assert old.output_dropout == 0.0
