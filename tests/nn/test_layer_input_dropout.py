"""Dropout on the first layer's input (``input_dropout``): the mask, its gradient, and
where it is carried."""

import pickle

import numpy as np
import pytest

import numlstm
from numlstm import GRU, LSTM, RNN


def masked_twin(layer_class, rate, **kwargs):
    """A layer with input dropout ``rate`` and an identical one without any."""
    dropping = layer_class(3, 5, dtype=np.float64, random_state=4, input_dropout=rate, **kwargs)
    plain = layer_class(3, 5, dtype=np.float64, random_state=4, **kwargs)
    return dropping, plain


@pytest.mark.parametrize("layer_class", [LSTM, GRU, RNN])
def test_the_input_is_masked_while_training_and_the_gradient_follows(layer_class):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 7, 3))
    dropping, plain = masked_twin(layer_class, 0.3, num_layers=2, bidirectional=True)
    # The mask comes from the layer's own stream: draw it again from a copy.
    stream = np.random.default_rng()
    stream.bit_generator.state = dropping._rng.bit_generator.state
    mask = (stream.random(x.shape) < 0.7) / 0.7
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    out, _ = dropping.forward(x)
    d_out = rng.normal(size=out.shape)
    grads, dx = dropping.backward(d_out)
    plain.eval()  # no dropout between its layers either: dropout=0 there anyway
    expected_out, _ = plain.forward(x * mask)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    expected_grads, expected_dx = plain.backward(d_out)
    np.testing.assert_allclose(dx, expected_dx * mask, rtol=1e-12, atol=1e-12)
    for name in expected_grads:
        np.testing.assert_allclose(grads[name], expected_grads[name], rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_no_mask_in_evaluation_mode():
    x = np.random.default_rng(1).normal(size=(4, 5, 3))
    dropping, plain = masked_twin(LSTM, 0.5)
    assert not np.allclose(dropping.forward(x)[0], plain.forward(x)[0])
    dropping.eval()
    np.testing.assert_array_equal(dropping.forward(x)[0], plain.forward(x)[0])


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.1", None])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="input_dropout"):
        LSTM(3, 5, input_dropout=rate)


def test_the_rate_is_shown_pickled_and_saved(tmp_path):
    layer = GRU(3, 5, random_state=0, input_dropout=0.25)
    assert "input_dropout=0.25" in repr(layer)
    assert pickle.loads(pickle.dumps(layer)).input_dropout == 0.25
    numlstm.save(layer, tmp_path / "gru.npz")
    assert numlstm.load(tmp_path / "gru.npz").input_dropout == 0.25
    # A layer pickled before the option existed has none.
    state = layer.__getstate__()
    del state["input_dropout"]
    old = GRU.__new__(GRU)
    old.__setstate__(state)
    assert old.input_dropout == 0.0
