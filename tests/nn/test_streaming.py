"""Streaming inference (numlstm.nn.streaming.Stream): chunked calls equal one whole call."""

import numpy as np
import pytest

from numlstm import GRU, LSTM, RNN

LAYERS = {
    "lstm": lambda: LSTM(3, 6, dtype=np.float64, random_state=0),
    "lstm-2-layers-proj": lambda: LSTM(3, 6, num_layers=2, proj_size=4, dtype=np.float64,
                                       random_state=1),
    "lstm-peephole": lambda: LSTM(3, 5, peephole=True, dtype=np.float64, random_state=2),
    "gru-2-layers": lambda: GRU(3, 6, num_layers=2, dtype=np.float64, random_state=3),
    "rnn-relu": lambda: RNN(3, 6, nonlinearity="relu", dtype=np.float64, random_state=4),
    "lstm-float32": lambda: LSTM(3, 16, num_layers=2, dtype=np.float32, random_state=5),
}


def _split(n_steps, rng):
    """Random chunk lengths (1 to 5 steps) that add up to ``n_steps``."""
    bounds, t = [0], 0
    while t < n_steps:
        t = min(n_steps, t + int(rng.integers(1, 6)))
        bounds.append(t)
    return list(zip(bounds[:-1], bounds[1:]))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("batch", [1, 2, 37])
def test_chunked_outputs_and_states_equal_whole_sequence(name, batch):
    layer = LAYERS[name]()
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(batch, 23, 3)).astype(layer.dtype)
    states = tuple(rng.normal(size=s.shape).astype(layer.dtype)
                   for s in layer.forward_states(x[:, :1], requires_grad=False)[1])
    whole, finals = layer.forward_states(x, states, requires_grad=False)

    stream = layer.stream(batch_size=batch, states=states)
    chunks = [stream(x[:, a:b]) for a, b in _split(23, rng)]
    rtol = 1e-12 if layer.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, rtol=rtol, atol=rtol)
    for got, expected in zip(stream.states, finals):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)
    assert stream.n_steps_seen == 23


def test_one_step_at_a_time_and_reset():
    layer = LSTM(2, 4, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).normal(size=(1, 12, 2))
    stream = layer.stream()
    first = np.concatenate([stream(x[:, t:t + 1]) for t in range(12)], axis=1)
    np.testing.assert_allclose(first, layer.forward(x, requires_grad=False)[0], rtol=1e-12)
    # reset() starts new sequences: the same steps give the same outputs again.
    np.testing.assert_array_equal(stream.reset()(x[:, :3]), first[:, :3])
    assert stream.n_steps_seen == 3


def test_reset_goes_back_to_the_given_states_after_the_caller_reuses_them():
    layer = LSTM(2, 3, dtype=np.float64, random_state=0)
    h0, c0 = np.ones((1, 1, 3)), np.ones((1, 1, 3))
    x = np.random.default_rng(0).normal(size=(1, 4, 2))
    stream = layer.stream(1, (h0, c0))
    first = stream(x)
    h0[...] = 0.0
    c0[...] = 0.0
    np.testing.assert_array_equal(stream.reset()(x), first)


@pytest.mark.parametrize("name", ["lstm", "gru-2-layers", "lstm-2-layers-proj"])
def test_peek_looks_ahead_without_moving_the_stream(name):
    layer = LAYERS[name]()
    x = np.random.default_rng(7).normal(size=(2, 9, 3))
    stream = layer.stream(batch_size=2)
    stream(x[:, :4])
    before = stream.states
    ahead = stream.peek(x[:, 4:6])
    assert stream.n_steps_seen == 4
    for kept, now in zip(before, stream.states):
        np.testing.assert_array_equal(kept, now)
    np.testing.assert_array_equal(ahead, stream(x[:, 4:6]))  # the same steps, kept now
    whole, _ = layer.forward(x[:, :6], requires_grad=False)
    np.testing.assert_allclose(ahead, whole[:, 4:6], rtol=1e-12)


def test_stream_follows_new_weights():
    layer = LSTM(2, 4, dtype=np.float64, random_state=0)
    other = LSTM(2, 4, dtype=np.float64, random_state=9)
    x = np.random.default_rng(0).normal(size=(1, 5, 2))
    stream = layer.stream()
    stream(x[:, :2])
    layer.load_state_dict(other.state_dict())
    expected, _ = layer.forward(x[:, 2:], h0=None, requires_grad=False)
    # The state carried over was computed with the old weights, so compare the new
    # weights' effect on a fresh stream instead.
    np.testing.assert_allclose(stream.reset()(x[:, 2:]), expected, rtol=1e-12)


def test_stream_accepts_lists_and_converts_dtype():
    layer = LSTM(2, 3, dtype=np.float32, random_state=0)
    out = layer.stream()([[[0.5, -1.0]]])
    assert out.shape == (1, 1, 3) and out.dtype == np.float32


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 1, 2)), "carries 1 sequence"),
    (np.zeros((1, 1, 3)), "input_size=2"),
    (np.zeros((1, 2)), "3-D"),
    (np.zeros((1, 0, 2)), "at least one"),
])
def test_bad_chunks_are_refused(bad, message):
    stream = LSTM(2, 3, random_state=0).stream()
    with pytest.raises(ValueError, match=message):
        stream(bad)


def test_bidirectional_and_bad_batch_size_are_refused():
    with pytest.raises(ValueError, match="bidirectional"):
        LSTM(2, 3, bidirectional=True).stream()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            LSTM(2, 3).stream(batch_size=bad)
    with pytest.raises(ValueError, match="h0"):
        LSTM(2, 3).stream(batch_size=2, states=(np.zeros((1, 1, 3)), None))
