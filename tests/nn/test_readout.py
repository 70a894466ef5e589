"""Pooled readouts of LSTMNetwork: values against plain loops, gradients against finite
differences, and the checks of their arguments."""

import numpy as np
import pytest

from helpers import check_gradient_by_finite_differences, sample_indices
from numlstm import GRU, LSTM
from numlstm.nn import LSTMNetwork
from numlstm.nn.readout import READOUTS, pool, pool_backward, readout_width

POOLED = ["mean", "max", "mean_max"]


def loop_pool(out, lengths, readout):
    """The readout written as loops over rows, units and steps."""
    batch, n_steps, units = out.shape
    means = np.zeros((batch, units))
    maxima = np.zeros((batch, units))
    for b in range(batch):
        n = n_steps if lengths is None else lengths[b]
        for j in range(units):
            values = [out[b, t, j] for t in range(n)]
            means[b, j] = sum(values) / n
            maxima[b, j] = max(values)
    return {"mean": means, "max": maxima,
            "mean_max": np.concatenate([means, maxima], axis=1)}[readout]


@pytest.mark.parametrize("readout", POOLED)
@pytest.mark.parametrize("ragged", [False, True])
def test_pool_matches_loops(readout, ragged):
    rng = np.random.default_rng(0)
    out = rng.normal(size=(5, 7, 3))
    lengths = np.array([7, 1, 4, 6, 2]) if ragged else None
    if ragged:  # padded steps hold large values: they must not be read
        out[np.arange(7)[None, :] >= lengths[:, None]] = 100.0
    features, _ = pool(out, lengths, readout)
    assert features.shape == (5, readout_width(readout, 3))
    np.testing.assert_allclose(features, loop_pool(out, lengths, readout), rtol=1e-14)


@pytest.mark.parametrize("readout", POOLED)
def test_pool_backward_is_the_adjoint_of_pool(readout):
    # <d_features, pool(out)> is linear in out for a fixed argmax: its gradient is
    # pool_backward(d_features), checked by central differences.
    rng = np.random.default_rng(1)
    out = rng.normal(size=(4, 6, 3))
    lengths = np.array([6, 2, 5, 1])
    d_features = rng.normal(size=(4, readout_width(readout, 3)))
    _, cache = pool(out, lengths, readout)
    analytic = pool_backward(d_features, cache, out.shape, out.dtype)
    assert not analytic[np.arange(6)[None, :] >= lengths[:, None]].any()

    def loss():
        return float(np.vdot(d_features, pool(out, lengths, readout)[0]))

    check_gradient_by_finite_differences(loss, out, analytic, "out")


@pytest.mark.parametrize("readout", POOLED)
@pytest.mark.parametrize("layer_class, bidirectional", [(LSTM, False), (LSTM, True),
                                                        (GRU, True)])
def test_network_gradient_by_finite_differences(readout, layer_class, bidirectional):
    rng = np.random.default_rng(2)
    layer = layer_class(3, 4, bidirectional=bidirectional, dtype=np.float64, random_state=0)
    net = LSTMNetwork(layer, 3, loss="log_loss", readout=readout, random_state=1)
    X = rng.normal(size=(5, 7, 3))
    lengths = np.array([7, 3, 5, 1, 6])
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    net.loss_and_gradient(X, Y, lengths, alpha=1e-3)
    analytic = net.get_flat_grads()
    flat = net.get_flat_params()

    def loss():
        net.set_flat_params(flat)
        return net.loss_and_gradient(X, Y, lengths, alpha=1e-3)

    indices = sample_indices(rng, flat, 60) + [(flat.size - 1,)]
    check_gradient_by_finite_differences(loss, flat, analytic, "parameters", indices,
                                         rtol=1e-5, atol=1e-8)


def test_network_prediction_reads_the_pooled_outputs():
    rng = np.random.default_rng(3)
    layer = LSTM(2, 3, bidirectional=True, dtype=np.float64, random_state=0)
    net = LSTMNetwork(layer, 1, readout="mean_max", random_state=1)
    X = rng.normal(size=(4, 5, 2))
    lengths = np.array([5, 2, 3, 4])
    out, _ = layer.forward(X, lengths=lengths, requires_grad=False)
    expected = loop_pool(out, lengths, "mean_max") @ net.coef_ + net.intercept_
    np.testing.assert_allclose(net.decision_function(X, lengths), expected, rtol=1e-12)
    assert net.coef_.shape == (12, 1)


def test_readout_arguments_are_checked():
    layer = LSTM(2, 3, random_state=0)
    with pytest.raises(ValueError, match="readout must be one of"):
        LSTMNetwork(layer, 1, readout="attention")
    with pytest.raises(ValueError, match="sequence-output"):
        LSTMNetwork(layer, 1, sequence_output=True, readout="mean")
    assert set(READOUTS) == {"last", *POOLED}
