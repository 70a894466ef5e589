"""numlstm.LSTM(device="cuda") end to end, against the same layer on the CPU."""

import numpy as np
import pytest

from numlstm import LSTM
from numlstm.nn.cuda_backend import _simulator_active

pytestmark = pytest.mark.cudasim

RTOL = {np.float64: 1e-9, np.float32: 1e-4}


def assert_matches(actual, desired, dtype, name):
    desired = np.asarray(desired)
    scale = max(float(np.max(np.abs(desired))), 1e-30)
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=name)


def twin_layers(I, H, L, bidirectional, dtype, dropout=0.0):
    """The same layer (weights and dropout stream) on the CPU and on CUDA."""
    kw = dict(num_layers=L, bidirectional=bidirectional, dtype=dtype, dropout=dropout,
              random_state=0)
    cpu = LSTM(I, H, device="cpu", **kw)
    gpu = LSTM(I, H, device="cuda", **kw)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_layer_bidirectional_ragged_with_state(dtype):
    B, T, I, H, L = 4, 4, 3, 3, 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I))
    lengths = np.array([4, 2, 1, 3])
    h0 = rng.standard_normal((2 * L, B, H))
    c0 = rng.standard_normal((2 * L, B, H))
    d_out = rng.standard_normal((B, T, 2 * H))
    d_h_n = rng.standard_normal((2 * L, B, H))
    d_c_n = rng.standard_normal((2 * L, B, H))
    cpu, gpu = twin_layers(I, H, L, True, dtype, dropout=0.25 if dtype == np.float64 else 0.0)
    results = []
    for layer in (cpu, gpu):
        out, (h_n, c_n) = layer.forward(x, h0, c0, lengths=lengths)
        grads, dx = layer.backward(d_out, d_h_n, d_c_n)
        results.append(dict(out=out, h_n=h_n, c_n=c_n, dx=dx,
                            flat_gradient=layer.flat_gradient.copy(), **grads))
    expected, actual = results
    assert set(actual) == set(expected)
    assert "h0" in actual and "c0" in actual
    for name, value in expected.items():
        assert actual[name].dtype == np.dtype(dtype), name
        assert_matches(actual[name], value, dtype, name)


def test_inference_and_device_names():
    B, T, I, H = 3, 5, 2, 4
    x = np.random.default_rng(2).standard_normal((B, T, I))
    cpu, gpu = twin_layers(I, H, 1, False, np.float32)
    assert gpu.device == "cuda" and "cuda" in repr(gpu)
    # "auto" picks a real GPU, never the simulator.
    assert LSTM(I, H, device="auto").device == ("cpu" if _simulator_active() else "cuda")
    expected = cpu.forward(x, requires_grad=False)
    actual = gpu.forward(x, requires_grad=False)
    assert_matches(actual[0], expected[0], np.float32, "out")
    assert_matches(actual[1][0], expected[1][0], np.float32, "h_n")
    assert_matches(actual[1][1], expected[1][1], np.float32, "c_n")
    with pytest.raises(RuntimeError):
        gpu.backward(np.ones_like(actual[0]))


def test_gpu_model_unpickles_and_predicts_without_a_gpu(tmp_path):
    # A model fitted on a GPU must load where there is none: its weights are NumPy arrays
    # and unpickling picks the CPU when CUDA is unusable.
    import os
    import pickle
    import subprocess
    import sys

    from numlstm import LSTMRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 5, 2))
    y = X[:, :, 0].sum(axis=1)
    model = LSTMRegressor(hidden_size=3, max_iter=2, device="cuda", dtype="float64",
                          random_state=0).fit(X, y)
    assert model.network_.lstm.device == "cuda"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X)
    pred_path, x_path = str(tmp_path / "pred.npy"), str(tmp_path / "X.npy")
    script = (
        "import pickle, sys, numpy as np\n"
        f"model = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "assert model.network_.lstm.device == 'cpu', model.network_.lstm.device\n"
        f"np.save({pred_path!r}, model.predict(np.load({x_path!r})))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["NUMBA_ENABLE_CUDASIM"] = "0"
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, even on a machine that has one
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), model.predict(X), rtol=1e-9)


def test_stream_on_cuda_equals_the_cpu_stream():
    # A stream asks the backend for a runner; on CUDA it runs inference call by call.
    cpu, gpu = twin_layers(3, 4, 2, False, np.float64)
    x = np.random.default_rng(3).standard_normal((2, 6, 3))
    on_cpu, on_gpu = cpu.stream(batch_size=2), gpu.stream(batch_size=2)
    for a, b in ((0, 2), (2, 3), (3, 6)):
        assert_matches(on_gpu(x[:, a:b]), on_cpu(x[:, a:b]), np.float64, f"steps {a}:{b}")
    for got, expected in zip(on_gpu.states, on_cpu.states):
        assert_matches(got, expected, np.float64, "states")
