"""Property-based tests (hypothesis) of the CPU kernels behind numlstm.LSTM.

Over random shapes, dtypes, layer counts, directions, ragged lengths and initial states:

* forward outputs, final states, every gradient and the input gradient agree with the
  plain NumPy reference of ``tests/lstm_reference.py``;
* gradients agree with central finite differences (float64, small cases);
* padding a batch with extra timesteps (zeros, or garbage) beyond ``lengths`` changes
  nothing;
* a batch of one gives what the same sequence gives inside a larger batch.

Batches of up to 11 rows make the CPU backend cut the batch into per-thread slices
(at least ``MIN_ROWS_PER_THREAD`` rows each), so both the serial and the parallel kernels
are exercised. Example counts are kept small; the profile (``tests/conftest.py``) is
derandomized, so CI runs the same examples every time.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_reference import lstm_backward, lstm_forward
from numlstm import LSTM

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Tolerances against float64 references: float64 kernels agree to rounding; float32
# kernels to float32 rounding accumulated over a few steps (values are O(1)).
TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}


@st.composite
def lstm_cases(draw, max_batch=11, max_steps=6, max_hidden=4, max_layers=2,
               dtypes=(np.float32, np.float64)):
    batch = draw(st.integers(1, max_batch))
    steps = draw(st.integers(1, max_steps))
    return dict(
        batch=batch,
        steps=steps,
        input_size=draw(st.integers(1, 3)),
        hidden=draw(st.integers(1, max_hidden)),
        layers=draw(st.integers(1, max_layers)),
        bidirectional=draw(st.booleans()),
        dtype=draw(st.sampled_from(dtypes)),
        lengths=draw(st.none() | st.lists(st.integers(1, steps), min_size=batch,
                                          max_size=batch)),
        initial_state=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def _build(case, weight_scale=0.6):
    rng = np.random.default_rng(case["seed"])
    layer = LSTM(case["input_size"], case["hidden"], num_layers=case["layers"],
                 bidirectional=case["bidirectional"], dtype=case["dtype"], random_state=0)
    layer.load_state_dict({k: rng.uniform(-weight_scale, weight_scale, v.shape)
                           for k, v in layer.state_dict().items()})
    B, T = case["batch"], case["steps"]
    D = 2 if case["bidirectional"] else 1
    S = case["layers"] * D
    x = rng.standard_normal((B, T, case["input_size"])).astype(case["dtype"])
    h0 = c0 = None
    if case["initial_state"]:
        h0 = (0.5 * rng.standard_normal((S, B, case["hidden"]))).astype(case["dtype"])
        c0 = (0.5 * rng.standard_normal((S, B, case["hidden"]))).astype(case["dtype"])
    lengths = None if case["lengths"] is None else np.array(case["lengths"])
    d_out = rng.standard_normal((B, T, D * case["hidden"])).astype(case["dtype"])
    d_h = rng.standard_normal((S, B, case["hidden"])).astype(case["dtype"])
    d_c = rng.standard_normal((S, B, case["hidden"])).astype(case["dtype"])
    return layer, x, h0, c0, lengths, d_out, d_h, d_c


def _valid(lengths, B, T):
    if lengths is None:
        return np.ones((B, T), dtype=bool)
    return np.arange(T)[None, :] < lengths[:, None]


@settings(max_examples=100, **SETTINGS)
@given(lstm_cases())
def test_kernels_match_numpy_reference(case):
    layer, x, h0, c0, lengths, d_out, d_h, d_c = _build(case)
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n=d_h, d_c_n=d_c)
    grads = {k: np.array(v) for k, v in grads.items()}

    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    as64 = (lambda a: None if a is None else a.astype(np.float64))
    r_out, r_h, r_c, cache = lstm_forward(params, as64(x), as64(h0), as64(c0), lengths)
    # padded steps of d_out are ignored by numlstm; the reference must not see them either
    d_out_ref = d_out.astype(np.float64) * _valid(lengths, *x.shape[:2])[:, :, None]
    r_grads, r_dx = lstm_backward(params, cache, d_out_ref, as64(d_h), as64(d_c))

    tol = TOL[case["dtype"]]
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(h_n, r_h, **tol)
    np.testing.assert_allclose(c_n, r_c, **tol)
    np.testing.assert_allclose(dx, r_dx, **tol)
    assert set(grads) == set(r_grads)
    for name, g in grads.items():
        scale = max(1.0, float(np.abs(r_grads[name]).max()))
        np.testing.assert_allclose(g, r_grads[name], rtol=tol["rtol"],
                                   atol=tol["atol"] * scale * x.shape[0] * x.shape[1],
                                   err_msg=name)


@settings(max_examples=40, **SETTINGS)
@given(lstm_cases(max_batch=4, max_steps=4, max_hidden=3, dtypes=(np.float64,)),
       st.data())
def test_gradients_match_finite_differences(case, data):
    layer, x, h0, c0, lengths, d_out, d_h, d_c = _build(case)

    def loss():
        out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths,
                                        requires_grad=False)
        return float(np.sum(d_out * out) + np.sum(d_h * h_n) + np.sum(d_c * c_n))

    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n=d_h, d_c_n=d_c)
    grads = {k: np.array(v) for k, v in grads.items()}
    dx = np.array(dx)
    eps = 1e-6
    targets = [(name, view, grads[name]) for name, view in layer.parameters().items()]
    targets.append(("x", x, dx))
    if h0 is not None:
        targets += [("h0", h0, grads["h0"]), ("c0", c0, grads["c0"])]
    for name, array, grad in targets:
        flat_index = data.draw(st.integers(0, array.size - 1), label=f"index of {name}")
        idx = np.unravel_index(flat_index, array.shape)
        saved = array[idx]
        array[idx] = saved + eps
        up = loss()
        array[idx] = saved - eps
        down = loss()
        array[idx] = saved
        numeric = (up - down) / (2 * eps)
        assert abs(numeric - grad[idx]) <= 1e-6 + 1e-5 * abs(numeric), (name, idx)


@settings(max_examples=60, **SETTINGS)
@given(lstm_cases(), st.integers(1, 5), st.sampled_from(["zeros", "garbage"]))
def test_extra_padding_steps_change_nothing(case, extra, filler):
    layer, x, h0, c0, lengths, d_out, d_h, d_c = _build(case)
    B, T, _ = x.shape
    if lengths is None:
        lengths = np.full(B, T)
    pad_shape = (B, extra, x.shape[2])
    pad = (np.zeros(pad_shape) if filler == "zeros"
           else np.random.default_rng(1).normal(scale=1e3, size=pad_shape))
    x_long = np.concatenate([x, pad.astype(x.dtype)], axis=1)
    d_out_long = np.concatenate(
        [d_out, np.ones((B, extra, d_out.shape[2]), d_out.dtype)], axis=1)

    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n=d_h, d_c_n=d_c)
    grads, dx = {k: np.array(v) for k, v in grads.items()}, np.array(dx)
    out_l, (h_l, c_l) = layer.forward(x_long, h0=h0, c0=c0, lengths=lengths)
    grads_l, dx_l = layer.backward(d_out_long, d_h_n=d_h, d_c_n=d_c)

    tol = (dict(rtol=1e-12, atol=1e-13) if x.dtype == np.float64
           else dict(rtol=1e-5, atol=1e-6))
    np.testing.assert_allclose(out_l[:, :T], out, **tol)
    assert not out_l[:, T:].any()
    np.testing.assert_allclose(h_l, h_n, **tol)
    np.testing.assert_allclose(c_l, c_n, **tol)
    np.testing.assert_allclose(dx_l[:, :T], dx, **tol)
    assert not dx_l[:, T:].any()
    for name in grads:
        np.testing.assert_allclose(grads_l[name], grads[name], err_msg=name,
                                   rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * B * T)


@settings(max_examples=60, **SETTINGS)
@given(lstm_cases(), st.data())
def test_batch_of_one_matches_row_in_batch(case, data):
    layer, x, h0, c0, lengths, d_out, d_h, d_c = _build(case)
    B = x.shape[0]
    b = data.draw(st.integers(0, B - 1), label="row")
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    _, dx = layer.backward(d_out, d_h_n=d_h, d_c_n=d_c)
    dx = np.array(dx)

    pick = (lambda a: None if a is None else a[:, b:b + 1])
    l_one = None if lengths is None else lengths[b:b + 1]
    out1, (h1, c1) = layer.forward(x[b:b + 1], h0=pick(h0), c0=pick(c0), lengths=l_one)
    grads1, dx1 = layer.backward(d_out[b:b + 1], d_h_n=d_h[:, b:b + 1],
                                 d_c_n=d_c[:, b:b + 1])

    tol = (dict(rtol=1e-12, atol=1e-13) if x.dtype == np.float64
           else dict(rtol=1e-5, atol=2e-6))
    np.testing.assert_allclose(out1[0], out[b], **tol)
    np.testing.assert_allclose(h1[:, 0], h_n[:, b], **tol)
    np.testing.assert_allclose(c1[:, 0], c_n[:, b], **tol)
    np.testing.assert_allclose(dx1[0], dx[b], **tol)
    if h0 is not None:
        layer.forward(x, h0=h0, c0=c0, lengths=lengths)
        grads, _ = layer.backward(d_out, d_h_n=d_h, d_c_n=d_c)
        np.testing.assert_allclose(grads1["h0"][:, 0], grads["h0"][:, b], **tol)
        np.testing.assert_allclose(grads1["c0"][:, 0], grads["c0"][:, b], **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_each_sequence_is_computed_alone_bit_for_bit(dtype, cell):
    # Every product works row by row in a fixed order, so a sequence's output and
    # gradients do not depend on the batch it shares, its position in it, or the thread
    # slice it lands in: exact equality, not a tolerance.
    from numlstm import GRU, LSTM, RNN

    layer_class = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell]
    layer = layer_class(5, 20, num_layers=2, bidirectional=True, dtype=dtype,
                        random_state=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 9, 5)).astype(dtype)
    lengths = rng.integers(1, 10, size=37)
    d_out = rng.standard_normal((37, 9, 40)).astype(dtype)
    out_all, _ = layer.forward(x, lengths=lengths)
    _, dx_all = layer.backward(d_out)
    for start, stop in [(0, 1), (5, 6), (36, 37), (3, 20)]:
        order = np.arange(start, stop)[::-1]
        out_part, _ = layer.forward(x[order], lengths=lengths[order])
        np.testing.assert_array_equal(out_part, out_all[order])
        _, dx_part = layer.backward(d_out[order])
        np.testing.assert_array_equal(dx_part, dx_all[order])
