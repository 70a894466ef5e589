"""Repeated inference calls reuse what they prepared (the packed weights above all) and
still see every change of the weights."""

import copy

import numpy as np
import pytest

from numlstm import GRU, LSTM, RNN

LAYERS = {
    "lstm": lambda dtype: LSTM(3, 40, num_layers=2, dtype=dtype, random_state=0),
    "lstm-peephole-proj": lambda dtype: LSTM(3, 12, proj_size=5, peephole=True, dtype=dtype,
                                             random_state=1),
    "gru-bidirectional": lambda dtype: GRU(3, 9, bidirectional=True, dtype=dtype,
                                           random_state=2),
    "rnn": lambda dtype: RNN(3, 7, dtype=dtype, random_state=3),
}


def _infer(layer, x):
    return layer.forward(x, requires_grad=False)[0]


def _reference(layer, x):
    """What the same network gives in a layer that never ran (nothing prepared or
    packed: a copy starts with empty workspaces)."""
    return _infer(copy.deepcopy(layer), x)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 2, 9])
def test_inference_sees_weights_changed_in_place(name, dtype, batch):
    layer = LAYERS[name](dtype)
    x = np.random.default_rng(batch).normal(size=(batch, 6, 3)).astype(dtype)
    first = _infer(layer, x)
    np.testing.assert_array_equal(_infer(layer, x), first)
    for key, weights in layer.parameters().items():
        if not key.startswith("weight"):
            continue
        weights[...] *= dtype(1.5)  # in place: the arrays the layer holds
        changed = _infer(layer, x)
        assert not np.array_equal(changed, first), key
        np.testing.assert_array_equal(changed, _reference(layer, x))
        weights[...] /= dtype(1.5)
        np.testing.assert_allclose(_infer(layer, x), first, rtol=1e-5, atol=1e-6)


def test_weights_restored_after_training_steps_are_packed_again():
    # Training packs the weights into arrays of its own; inference must not take its
    # packs for current when old weights come back (the best epoch's, say).
    layer = LSTM(3, 40, dtype=np.float32, random_state=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    saved = layer.flat_parameters.copy()
    before = _infer(layer, x)
    layer.flat_parameters[:] += 0.25
    out, _ = layer.forward(x)  # a training forward pass with the new weights
    layer.backward(np.ones_like(out))
    after = _infer(layer, x)
    assert not np.array_equal(after, before)
    layer.flat_parameters[:] = saved
    np.testing.assert_array_equal(_infer(layer, x), before)


def test_a_sign_flip_of_a_zero_weight_is_seen():
    # The comparison is by bits: -0.0 and 0.0 are packed as they are.
    layer = LSTM(2, 4, dtype=np.float64, random_state=0)
    layer.parameters()["weight_hh_l0"][0, 0] = 0.0
    x = np.random.default_rng(0).normal(size=(1, 3, 2))
    _infer(layer, x)
    layer.parameters()["weight_hh_l0"][0, 0] = -0.0
    source = layer._thread_workspaces()[0]._arrays["inference_packed_source"]
    _infer(layer, x)
    n_ih = layer.parameters()["weight_ih_l0"].size
    assert np.signbit(source[1 + n_ih])


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_stream_follows_weights_changed_in_place(batch):
    layer = LSTM(3, 40, dtype=np.float32, random_state=0)
    x = np.random.default_rng(0).normal(size=(batch, 8, 3)).astype(np.float32)
    stream = layer.stream(batch_size=batch)
    stream(x[:, :4])
    layer.parameters()["weight_ih_l0"][...] *= np.float32(-1.0)
    expected, _ = layer.forward(x, requires_grad=False)
    np.testing.assert_array_equal(stream.reset()(x), expected)


def test_shapes_and_thread_counts_get_plans_of_their_own():
    import numba

    layer = GRU(3, 8, dtype=np.float64, random_state=0)
    rng = np.random.default_rng(0)
    for batch, steps in [(1, 1), (3, 7), (1, 1), (16, 2)]:
        x = rng.normal(size=(batch, steps, 3))
        np.testing.assert_array_equal(_infer(layer, x), _reference(layer, x))
    threads = numba.get_num_threads()
    if threads > 1:
        x = rng.normal(size=(16, 2, 3))
        numba.set_num_threads(1)
        try:
            np.testing.assert_array_equal(_infer(layer, x), _reference(layer, x))
        finally:
            numba.set_num_threads(threads)


def test_read_only_inputs_are_served():
    layer = LSTM(3, 6, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    writable = _infer(layer, x)
    x.flags.writeable = False
    np.testing.assert_array_equal(_infer(layer, x), writable)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_stream_follows_every_parameter_changed_in_place(name):
    layer = LAYERS[name](np.float64)
    if layer.bidirectional:
        layer = GRU(3, 9, num_layers=2, dtype=np.float64, random_state=2)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    stream = layer.stream(batch_size=2)
    stream(x)
    for key, values in layer.parameters().items():
        values[...] += 0.125  # in place, biases included
        expected, _ = layer.forward(x, requires_grad=False)
        np.testing.assert_array_equal(stream.reset()(x), expected, err_msg=key)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inference_sees_biases_changed_in_place(name):
    # The summed bias is kept between calls while the biases hold the same bytes.
    layer = LAYERS[name](np.float64)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    first = _infer(layer, x)
    for key, values in layer.parameters().items():
        if not key.startswith("bias"):
            continue
        values[..., -1] += 0.5
        changed = _infer(layer, x)
        assert not np.array_equal(changed, first), key
        np.testing.assert_array_equal(changed, _reference(layer, x), err_msg=key)
        values[..., -1] -= 0.5


class _CountingBackend:
    """Stands in for a backend: counts the runners it makes, whose scope is settable."""

    def __init__(self, backend):
        self.backend = backend
        self.scope = 0
        self.made = 0

    def inference_scope(self):
        return self.scope

    def inference_runner(self, *args):
        self.made += 1
        return self.backend.inference_runner(*args)


def test_repeated_calls_reuse_one_runner_per_shape_and_scope():
    from numlstm.nn.inference_runs import InferenceRuns
    from numlstm.nn.workspace import Workspace

    layer = LSTM(3, 8, dtype=np.float64, random_state=0)
    plain = copy.deepcopy(layer)
    counting = _CountingBackend(layer._backend)
    layer._backend = counting
    runs, workspace = InferenceRuns(), Workspace()
    rng = np.random.default_rng(0)

    def run(batch, steps):
        x = rng.normal(size=(batch, steps, 3))
        h0, c0 = layer._zero_states(batch)
        lengths = layer._full_lengths(batch, steps)
        out, h_n, c_n = runs.run(layer, 0, x, lengths, h0, c0, workspace)
        expected, (h_ref, c_ref) = plain.forward(x, requires_grad=True)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(c_n, c_ref)

    run(1, 1)
    run(1, 1)
    assert counting.made == 1
    run(2, 1)
    run(1, 4)
    assert counting.made == 3
    counting.scope = 1  # e.g. another thread count: the batch is split otherwise
    run(1, 1)
    assert counting.made == 4
    run(1, 1)
    assert counting.made == 4


def test_forward_at_batch_one_keeps_its_runner_between_calls(monkeypatch):
    layer = LSTM(3, 8, dtype=np.float32, random_state=0)
    counting = _CountingBackend(layer._backend)
    counting.scope = layer._backend.inference_scope()
    monkeypatch.setattr(layer, "_backend", counting)
    x = np.random.default_rng(0).normal(size=(1, 1, 3)).astype(np.float32)
    outputs = [_infer(layer, x) for _ in range(3)]
    assert counting.made == 1
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_final_states_are_new_arrays_not_the_shared_zeros():
    layer = LSTM(3, 8, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).normal(size=(1, 4, 3))
    out, (h_n, c_n) = layer.forward(x, requires_grad=False)
    h_n[...] = 7.0  # a caller writing into what it got back
    c_n[...] = 7.0
    again, _ = layer.forward(x, requires_grad=False)
    np.testing.assert_array_equal(again, out)
    assert not layer._zero_states(1)[0].any()


def test_inputs_the_kernels_cannot_take_as_they_are_are_converted():
    layer = LSTM(3, 6, dtype=np.float32, random_state=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    expected = _infer(layer, x.astype(np.float32))
    np.testing.assert_array_equal(_infer(layer, x), expected)  # float64
    strided = np.zeros((2, 8, 3), np.float32)
    strided[:, ::2] = x
    np.testing.assert_array_equal(_infer(layer, strided[:, ::2]), expected)
    np.testing.assert_array_equal(_infer(layer, x.tolist()), expected)
