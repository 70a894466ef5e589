"""GRU, RNN and the LSTM's options on device="cuda" (CUDA simulator unless a GPU is asked
for), end to end against the same layers on the CPU."""

import numpy as np
import pytest

from numlstm import GRU, LSTM, RNN

pytestmark = pytest.mark.cudasim

RTOL = {np.float64: 1e-9, np.float32: 1e-4}

MAKERS = {
    "gru": lambda **kw: GRU(3, 3, **kw),
    "rnn_tanh": lambda **kw: RNN(3, 3, **kw),
    "rnn_relu": lambda **kw: RNN(3, 3, nonlinearity="relu", **kw),
    "lstm_proj": lambda **kw: LSTM(3, 3, proj_size=2, **kw),
    "lstm_peephole": lambda **kw: LSTM(3, 3, peephole=True, **kw),
    "lstm_proj_peephole": lambda **kw: LSTM(3, 3, proj_size=2, peephole=True, **kw),
}


def assert_matches(actual, desired, dtype, name):
    desired = np.asarray(desired)
    scale = max(float(np.max(np.abs(desired))), 1e-30)
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=name)


def run(layer, x, states, lengths, d_out, d_states):
    out, finals = layer.forward_states(x, states, lengths)
    grads, dx = layer.backward_states(d_out, d_states)
    inference, inference_finals = layer.forward_states(x, states, lengths,
                                                       requires_grad=False)
    result = dict(out=out, dx=dx, inference=inference, **grads)
    for i, (a, b) in enumerate(zip(finals, inference_finals)):
        result[f"final{i}"] = a
        result[f"inference_final{i}"] = b
    return result


def compare(name, dtype, B, T, L, bidirectional, lengths):
    D = 2 if bidirectional else 1
    kw = dict(num_layers=L, bidirectional=bidirectional, dtype=dtype, random_state=0)
    cpu = MAKERS[name](device="cpu", **kw)
    gpu = MAKERS[name](device="cuda", **kw)
    rng = np.random.default_rng(1)
    cpu.load_state_dict({k: rng.uniform(-0.8, 0.8, v.shape)
                         for k, v in cpu.state_dict().items()})
    gpu.load_state_dict(cpu.state_dict())
    sizes = cpu._state_sizes()
    x = rng.standard_normal((B, T, 3))
    states = tuple(rng.standard_normal((D * L, B, n)) for n in sizes)
    d_states = tuple(rng.standard_normal((D * L, B, n)) for n in sizes)
    d_out = rng.standard_normal((B, T, cpu.output_size))
    expected = run(cpu, x, states, lengths, d_out, d_states)
    actual = run(gpu, x, states, lengths, d_out, d_states)
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert actual[key].dtype == np.dtype(dtype), key
        assert_matches(actual[key], value, dtype, key)
    return actual


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(MAKERS))
def test_matches_cpu(name, dtype):
    # float64 on two layers; float32 (the other kernels' compilation) on one, for time.
    actual = compare(name, dtype, 3, 3, 2 if dtype == np.float64 else 1, True,
                     np.array([3, 1, 2]))
    # Padded steps: zero output, no input gradient.
    assert np.all(actual["out"][1, 1:] == 0.0) and np.all(actual["dx"][1, 1:] == 0.0)


@pytest.mark.parametrize("name", ["gru", "lstm_proj_peephole"])
def test_matches_cpu_one_direction(name):
    compare(name, np.float64, 2, 4, 1, False, np.array([2, 4]))


def test_plain_lstm_still_runs_fused(monkeypatch):
    from numlstm.nn import cuda_backend as gpu_lstm

    def refuse(*args, **kwargs):
        raise AssertionError("the plain LSTM must run on the fused kernels")

    monkeypatch.setattr(gpu_lstm, "_generic_forward_on_device", refuse)
    layer = LSTM(3, 4, dtype=np.float64, device="cuda", random_state=0)
    out, (h_n, c_n) = layer.forward(np.ones((2, 3, 3)))
    assert out.shape == (2, 3, 4) and c_n.shape == (1, 2, 4)
