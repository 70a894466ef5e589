"""numlstm.nn.cuda_backend against the CPU kernels, one layer at a time (backend interface)."""

import numpy as np
import pytest

from numlstm.nn.cpu_backend import CPUBackend
from numlstm.nn.cuda_backend import CUDABackend, _kernels, _Mat, _matmul

pytestmark = pytest.mark.cudasim

RTOL = {np.float64: 1e-9, np.float32: 1e-4}


def assert_matches(actual, desired, dtype, name):
    """Relative to the largest entry, so entries near zero do not need 1e-9 on their own."""
    desired = np.asarray(desired)
    scale = max(float(np.max(np.abs(desired))), 1e-30)
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=name)


def make_layer_problem(B, T, I, H, D, ragged, with_state, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    if ragged:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T
        lengths[-1] = 1
    else:
        lengths = np.full(B, T)
    W_ih = (0.5 * rng.standard_normal((D, 4 * H, I))).astype(dtype)
    W_hh = (0.5 * rng.standard_normal((D, 4 * H, H))).astype(dtype)
    bias = (0.5 * rng.standard_normal((D, 4 * H))).astype(dtype)
    if with_state:
        h0 = rng.standard_normal((D, B, H)).astype(dtype)
        c0 = rng.standard_normal((D, B, H)).astype(dtype)
    else:
        h0 = np.zeros((D, B, H), dtype)
        c0 = np.zeros((D, B, H), dtype)
    d_out = rng.standard_normal((B, T, D * H)).astype(dtype)
    d_h_n = rng.standard_normal((D, B, H)).astype(dtype)
    d_c_n = rng.standard_normal((D, B, H)).astype(dtype)
    return (x, lengths.astype(np.int64), W_ih, W_hh, bias, h0, c0), (d_out, d_h_n, d_c_n)


def run_backend(backend, args, grads_in):
    x, lengths, W_ih, W_hh, bias, h0, c0 = args
    out, h_n, c_n, cache = backend.forward(*args)
    res = {"out": out, "h_n": h_n, "c_n": c_n}
    res["out_inf"], res["h_n_inf"], res["c_n_inf"] = backend.inference(*args)
    dW_ih, dW_hh, d_bias = np.empty_like(W_ih), np.empty_like(W_hh), np.empty_like(bias)
    dx, d_h0, d_c0 = backend.backward(x, lengths, W_ih, W_hh, cache, *grads_in,
                                      dW_ih, dW_hh, d_bias)
    res.update(dx=dx, d_h0=d_h0, d_c0=d_c0, dW_ih=dW_ih, dW_hh=dW_hh, d_bias=d_bias)
    return res, cache


# (batch, time, input, hidden, directions, ragged, h0/c0, dtype). With the simulator's
# 4x4 thread tiles a block covers 4 hidden units and 8 batch rows.
LAYER_CASES = [
    (3, 5, 4, 3, 2, True, True, np.float64),     # bidirectional, ragged, initial state
    (5, 6, 3, 5, 1, True, False, np.float32),    # ragged, several unit tiles
    (4, 3, 9, 6, 1, False, True, np.float64),    # input and hidden over one tile
    (10, 4, 2, 3, 2, True, True, np.float32),    # batch over one block of rows
    (1, 1, 2, 2, 2, False, True, np.float64),    # one sequence, one step
]


def case_id(c):
    B, T, I, H, D, ragged, state, dtype = c
    return (f"B{B}T{T}I{I}H{H}D{D}" + ("rag" if ragged else "") + ("st" if state else "")
            + np.dtype(dtype).name)


@pytest.mark.parametrize("case", LAYER_CASES, ids=case_id)
def test_layer_matches_cpu(case):
    *shape, dtype = case
    args, grads_in = make_layer_problem(*shape, dtype)
    expected, _ = run_backend(CPUBackend(), args, grads_in)
    actual, _ = run_backend(CUDABackend(), args, grads_in)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert actual[name].shape == value.shape, name
        assert_matches(actual[name], value, dtype, name)


@pytest.mark.parametrize("spec_options", [{}, {"cell": "gru"}])
def test_backward_without_the_input_gradient(spec_options):
    """``input_gradient=False`` returns no ``dx`` and the same gradients otherwise, on the
    fused LSTM path and the per-step path of the other cells."""
    from numlstm.nn.layer_spec import LayerSpec

    args, grads_in = make_layer_problem(3, 4, 5, 3, 2, True, True, np.float64)
    x, lengths, W_ih, W_hh, bias, h0, c0 = args
    spec = None
    if spec_options:
        W_ih, W_hh, bias = W_ih[:, :9], W_hh[:, :9], bias[:, :9]
        spec = LayerSpec(spec_options["cell"], bias_hn=np.zeros((2, 3)))
        c0 = None
        grads_in = grads_in[:2] + (None,)
    backend = CUDABackend()
    results = []
    for input_gradient in (True, False):
        *_, cache = backend.forward(x, lengths, W_ih, W_hh, bias, h0, c0, spec=spec)
        dW_ih, dW_hh, d_bias = np.empty_like(W_ih), np.empty_like(W_hh), np.empty_like(bias)
        dx, d_h0, _ = backend.backward(x, lengths, W_ih, W_hh, cache, *grads_in, dW_ih,
                                       dW_hh, d_bias, input_gradient=input_gradient)
        results.append((dx, d_h0, dW_ih, dW_hh, d_bias))
    assert results[0][0].shape == x.shape and results[1][0] is None
    for expected, actual in zip(results[0][1:], results[1][1:]):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_launch_sweeps_match_per_step_launches(dtype, monkeypatch):
    """A grid of one block (the simulator's limit) runs each sweep as one cooperative
    launch; the per-step launches must give the same result."""
    from numlstm.nn import cuda_backend as gpu_lstm

    args, grads_in = make_layer_problem(6, 5, 3, 4, 1, True, True, dtype, seed=9)
    kern = CUDABackend()._kernels(dtype)
    grid, _, bwd_grid, _ = gpu_lstm._step_grids(kern, 6, 4, 1)
    assert grid == bwd_grid == (1, 1, 1)
    launchers = []
    original = gpu_lstm._cooperative_launcher

    def spy(*a):
        launchers.append(original(*a))
        return launchers[-1]

    monkeypatch.setattr(gpu_lstm, "_cooperative_launcher", spy)
    expected, _ = run_backend(CPUBackend(), args, grads_in)
    sweeps, _ = run_backend(CUDABackend(persistent=True), args, grads_in)
    assert len(launchers) == 3 and all(launcher is not None for launcher in launchers)
    steps, _ = run_backend(CUDABackend(persistent=False), args, grads_in)
    assert len(launchers) == 3
    for name, value in expected.items():
        assert_matches(sweeps[name], value, dtype, name)
        np.testing.assert_allclose(sweeps[name], steps[name], rtol=RTOL[dtype] / 100,
                                   atol=0, err_msg=name)


def test_production_tiling_matches_cpu():
    """The GPU's 16x16 thread tiles with 4x4 (backward 4x2) register tiles."""
    args, grads_in = make_layer_problem(3, 3, 5, 4, 2, True, True, np.float64, seed=3)
    expected, _ = run_backend(CPUBackend(), args, grads_in)
    actual, _ = run_backend(CUDABackend(tiling=(16, 4, 2)), args, grads_in)
    for name, value in expected.items():
        assert_matches(actual[name], value, np.float64, name)


def test_cache_stays_on_device_and_backward_repeats():
    args, grads_in = make_layer_problem(4, 3, 2, 3, 1, True, True, np.float64, seed=5)
    backend = CUDABackend()
    first, cache = run_backend(backend, args, grads_in)
    for name in ("x", "lengths", "gates", "h_prev", "c_prev"):
        arr = getattr(cache, name)
        assert not isinstance(arr, np.ndarray) and hasattr(arr, "copy_to_host"), name
    x, lengths, W_ih, W_hh = args[:4]
    dW_ih, dW_hh, d_bias = np.empty_like(W_ih), np.empty_like(W_hh), np.empty_like(args[4])
    dx, d_h0, d_c0 = backend.backward(x, lengths, W_ih, W_hh, cache, *grads_in,
                                      dW_ih, dW_hh, d_bias)
    np.testing.assert_array_equal(dx, first["dx"])
    np.testing.assert_array_equal(d_c0, first["d_c0"])
    np.testing.assert_array_equal(dW_hh, first["dW_hh"])


@pytest.mark.parametrize("tiling", [(4, 2), (16, 4)], ids=["tile4", "tile16"])
@pytest.mark.parametrize("a_t,b_t", [(False, False), (True, False), (False, True),
                                     (True, True)])
def test_matmul_kernel(tiling, a_t, b_t):
    """Transposed operands, offsets, batch strides and accumulation of the product kernel."""
    from numba import cuda

    rng = np.random.default_rng(7)
    m, n, k, batch = 9, 6, 11, 2
    kern = _kernels("float64", *tiling)
    A = rng.standard_normal((batch, k, m) if a_t else (batch, m, k))
    B = rng.standard_normal((batch, n, k) if b_t else (batch, k, n))
    C = rng.standard_normal((batch, m, n))
    pad = 3  # operands start 3 elements into their buffers
    bufs = [np.concatenate([np.zeros(pad), M.ravel()]) for M in (A, B, C)]
    a_d, b_d, c_d = (cuda.to_device(buf) for buf in bufs)
    opA = np.swapaxes(A, 1, 2) if a_t else A
    opB = np.swapaxes(B, 1, 2) if b_t else B
    _matmul(kern, m, n, k, _Mat(a_d, A.shape[2], pad, A[0].size, a_t),
            _Mat(b_d, B.shape[2], pad, B[0].size, b_t), _Mat(c_d, n, pad, C[0].size),
            accumulate=True, batch=batch)
    got = c_d.copy_to_host()
    np.testing.assert_allclose(got[pad:].reshape(C.shape), C + opA @ opB, rtol=1e-12)
    np.testing.assert_array_equal(got[:pad], 0.0)
