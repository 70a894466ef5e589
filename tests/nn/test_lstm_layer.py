"""numlstm.LSTM forward/backward against the plain-NumPy reference (tests/lstm_reference.py)."""

import functools

import numba
import numpy as np
import pytest

import lstm_reference as ref
from helpers import assert_close, assert_gradients_close, random_reference_problem
from numlstm import LSTM

RTOL = 1e-10
ATOL = 1e-10

# (batch, time, input, hidden, num_layers, bidirectional, ragged, with_state)
CASES = [
    (1, 1, 3, 2, 1, False, False, False),   # batch 1, time 1
    (1, 6, 2, 3, 1, True, False, True),     # batch 1, bidirectional
    (4, 1, 3, 2, 2, True, False, True),     # time 1, multi-layer bidirectional
    (3, 5, 4, 3, 1, False, True, True),     # ragged with state
    (3, 5, 3, 4, 2, True, True, False),     # ragged multi-layer bidirectional
    (5, 4, 2, 3, 3, False, True, True),     # 3 layers ragged
    (2, 7, 3, 5, 2, False, False, False),
    (12, 5, 3, 4, 2, True, True, True),     # big enough for several batch chunks/threads
]


def case_id(c):
    return "B{}T{}I{}H{}L{}{}{}{}".format(c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "",
                                          "rag" if c[6] else "", "st" if c[7] else "")


# ragged batches: a one-step sequence first, a full-length one last
make_problem = functools.partial(random_reference_problem, longest_first=False)


def make_layer(params, dtype=np.float64, **kw):
    L, D, I, H = ref.describe(params)
    layer = LSTM(I, H, num_layers=L, bidirectional=(D == 2), dtype=dtype, random_state=0, **kw)
    layer.load_state_dict(params)
    return layer


def check_close(actual, desired, name, rtol=RTOL, atol=ATOL):
    assert_close(actual, desired, rtol, atol, name)


@pytest.mark.parametrize("grad_mode", ["all", "d_out_only", "d_h_n_only"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_forward_backward_matches_reference(case, grad_mode):
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case,
                                                                   seed=abs(hash(case)) % 997)
    layer = make_layer(params)
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    for a in (out, h_n, c_n):
        assert a.dtype == np.float64
    check_close(out, r_out, "out")
    check_close(h_n, r_h, "h_n")
    check_close(c_n, r_c, "c_n")

    if grad_mode == "all":
        grads, dx = layer.backward(d_out, d_h_n=d_h_n, d_c_n=d_c_n)
        r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    elif grad_mode == "d_out_only":
        grads, dx = layer.backward(d_out)
        r_grads, r_dx = ref.lstm_backward(params, cache, d_out)
    else:
        grads, dx = layer.backward(np.zeros_like(d_out), d_h_n=d_h_n)
        r_grads, r_dx = ref.lstm_backward(params, cache, np.zeros_like(d_out), d_h_n)
    check_close(dx, r_dx, "dx")
    assert set(grads) == set(params) | ({"h0", "c0"} if h0 is not None else set())
    assert_gradients_close(grads, r_grads, RTOL, ATOL)


def test_h0_without_c0_and_c0_without_h0():
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*CASES[4][:7], True, seed=5)
    layer = make_layer(params)
    zeros = np.zeros_like(h0)

    out, (h_n, c_n) = layer.forward(x, h0=h0, lengths=lengths)
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, h0, zeros, lengths)
    check_close(out, r_out, "out")
    check_close(c_n, r_c, "c_n")
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    assert "h0" in grads
    check_close(grads["h0"], r_grads["h0"], "h0")
    check_close(dx, r_dx, "dx")

    out, (h_n, c_n) = layer.forward(x, c0=c0, lengths=lengths)
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, zeros, c0, lengths)
    check_close(out, r_out, "out")
    check_close(h_n, r_h, "h_n")
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    assert "c0" in grads
    check_close(grads["c0"], r_grads["c0"], "c0")


def test_padded_steps_are_zero_and_ignored():
    params, x, h0, c0, _, d_out, d_h_n, d_c_n = make_problem(3, 5, 3, 4, 2, True, False, True, 11)
    lengths = np.array([2, 5, 1])
    layer = make_layer(params)
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    out, h_n, c_n, dx = out.copy(), h_n.copy(), c_n.copy(), dx.copy()
    flat_g = layer.flat_gradient.copy()
    for b, n in enumerate(lengths):
        assert np.all(out[b, n:] == 0.0)
        assert np.all(dx[b, n:] == 0.0)
    # garbage in the padded part of x and d_out changes nothing
    x2 = x.copy()
    x2[0, 2:] = 50.0
    x2[2, 1:] = -3.0
    d2 = d_out.copy()
    d2[0, 2:] = 9.0
    d2[2, 1:] = 9.0
    out2, (h2, c2) = layer.forward(x2, h0=h0, c0=c0, lengths=lengths)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(h2, h_n)
    np.testing.assert_array_equal(c2, c_n)
    grads2, dx2 = layer.backward(d2, d_h_n, d_c_n)
    np.testing.assert_allclose(layer.flat_gradient, flat_g, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-13, atol=1e-14)


def test_lengths_all_full_equals_no_lengths():
    params, x, h0, c0, _, d_out, d_h_n, d_c_n = make_problem(3, 4, 2, 3, 2, True, False, True, 2)
    layer = make_layer(params)
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0)
    out, h_n, c_n = out.copy(), h_n.copy(), c_n.copy()
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    g1, dx = layer.flat_gradient.copy(), dx.copy()
    out2, (h2, c2) = layer.forward(x, h0=h0, c0=c0, lengths=np.array([4, 4, 4]))
    _, dx2 = layer.backward(d_out, d_h_n, d_c_n)
    np.testing.assert_allclose(out2, out, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h2, h_n, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(c2, c_n, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(layer.flat_gradient, g1, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-13, atol=1e-14)


def test_backward_overwrites_gradient_and_inputs_untouched():
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*CASES[4], seed=8)
    layer = make_layer(params)
    saved = [a.copy() for a in (x, h0 if h0 is not None else x, d_out, d_h_n, d_c_n, lengths)]
    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    layer.backward(d_out, d_h_n, d_c_n)
    g1 = layer.flat_gradient.copy()
    assert np.any(g1 != 0.0)
    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    layer.backward(d_out, d_h_n, d_c_n)
    # filled, not accumulated
    np.testing.assert_allclose(layer.flat_gradient, g1, rtol=1e-13, atol=1e-14)
    for a, s in zip((x, h0 if h0 is not None else x, d_out, d_h_n, d_c_n, lengths), saved):
        np.testing.assert_array_equal(a, s)


def test_non_contiguous_and_int_inputs():
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*CASES[3], seed=4)
    layer = make_layer(params)
    xf = np.asfortranarray(x)
    xs = np.repeat(x, 2, axis=2)[:, :, ::2]  # strided view equal to x
    assert not xs.flags.c_contiguous
    np.testing.assert_array_equal(xs, x)
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    for xx in (xf, xs):
        out, (h_n, c_n) = layer.forward(xx, h0=np.asfortranarray(h0), c0=c0,
                                        lengths=list(lengths))
        check_close(out, r_out, "out")
        check_close(h_n, r_h, "h_n")
        grads, dx = layer.backward(np.asfortranarray(d_out), np.asfortranarray(d_h_n), d_c_n)
        check_close(dx, r_dx, "dx")
        check_close(grads["weight_hh_l0"], r_grads["weight_hh_l0"], "weight_hh_l0")
    # integer input is converted to the layer dtype
    xi = np.round(x * 2).astype(np.int64)
    out, _ = layer.forward(xi, lengths=lengths)
    assert out.dtype == np.float64
    check_close(out, ref.lstm_forward(params, xi.astype(float), None, None, lengths)[0], "out")


@pytest.mark.parametrize("case", [CASES[4], CASES[3]], ids=case_id)
def test_float32_agrees_with_float64(case):
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case, seed=21)
    results = {}
    for dt in (np.float32, np.float64):
        layer = make_layer(params, dtype=dt)
        assert layer.dtype == np.dtype(dt)
        assert layer.flat_parameters.dtype == np.dtype(dt)
        out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
        assert out.dtype == dt and h_n.dtype == dt and c_n.dtype == dt
        grads, dx = layer.backward(d_out, d_h_n, d_c_n)
        assert dx.dtype == dt
        results[dt] = dict({k: np.array(v, dtype=np.float64) for k, v in grads.items()},
                           out=out.astype(np.float64), h_n=h_n.astype(np.float64),
                           c_n=c_n.astype(np.float64), dx=dx.astype(np.float64))
    r32, r64 = results[np.float32], results[np.float64]
    assert set(r32) == set(r64)
    for k in r64:
        scale = np.max(np.abs(r64[k]))
        assert np.max(np.abs(r32[k] - r64[k])) <= 1e-4 * max(scale, 1e-3), k


def test_dropout_only_between_layers_and_only_in_training():
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(3, 4, 3, 4, 2, True, True,
                                                                   False, 6)
    layer = make_layer(params, dropout=0.5)
    assert layer.training is True
    assert layer.dropout == 0.5
    r_out, r_h, r_c, _ = ref.lstm_forward(params, x, None, None, lengths)
    out_train, _ = layer.forward(x, lengths=lengths)
    assert not np.allclose(out_train, r_out, rtol=1e-6, atol=1e-6)
    layer.eval()
    assert layer.training is False
    out_eval, (h_n, _) = layer.forward(x, lengths=lengths)
    check_close(out_eval, r_out, "out")
    check_close(h_n, r_h, "h_n")
    layer.train()
    assert layer.training is True
    layer.train(False)
    assert layer.training is False

    # single layer: dropout never applies
    p1 = ref.init_params(3, 4, 1, False, rng=1)
    one = make_layer(p1, dropout=0.5)
    assert one.training is True
    out1, _ = one.forward(x, lengths=lengths)
    check_close(out1, ref.lstm_forward(p1, x, None, None, lengths)[0], "out")


@pytest.mark.parametrize("n_threads", sorted({1, 2, min(3, numba.config.NUMBA_NUM_THREADS)}))
def test_thread_count_does_not_change_results(n_threads):
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("not enough numba threads")
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(13, 4, 3, 3, 2, True, True,
                                                                   True, seed=31)
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    layer = make_layer(params)
    saved = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        for requires_grad in (False, True):
            out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths,
                                            requires_grad=requires_grad)
            check_close(out, r_out, "out")
            check_close(h_n, r_h, "h_n")
            check_close(c_n, r_c, "c_n")
        grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    finally:
        numba.set_num_threads(saved)
    check_close(dx, r_dx, "dx")
    for k in r_grads:
        check_close(grads[k], r_grads[k], k)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_padding_is_ignored(bad):
    """Packed-sequence semantics: values in the padded part of x are never read,
    so NaN/inf padding (a common way to pad unequal-length series) changes nothing."""
    params, x, h0, c0, _, d_out, d_h_n, d_c_n = make_problem(3, 5, 3, 4, 2, True, False, True, 12)
    lengths = np.array([5, 2, 3])
    x_bad = x.copy()
    x_bad[1, 2:] = bad
    x_bad[2, 3:] = bad
    r_out, r_h, r_c, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    layer = make_layer(params)
    out, (h_n, c_n) = layer.forward(x_bad, h0=h0, c0=c0, lengths=lengths)
    check_close(out, r_out, "out")
    check_close(h_n, r_h, "h_n")
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    check_close(dx, r_dx, "dx")
    for k in r_grads:
        check_close(grads[k], r_grads[k], k)


# Input widths on each side of the kernels' switches: the input gradient by dot products
# (at most 4 features) or by a product tile; dW_ih transposed (up to half a panel: 16
# features in float32, 8 in float64) or not.
@pytest.mark.parametrize("in_size", [1, 4, 5, 8, 9, 16, 17, 40])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_input_gradients_for_every_input_width(in_size, dtype):
    case = (7, 5, in_size, 6, 2, True, True, False)  # layer 2 reads 12 features
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case, seed=in_size)
    layer = make_layer(params, dtype=dtype)
    out, _ = layer.forward(x, lengths=lengths)
    grads, dx = layer.backward(d_out)
    _, _, _, cache = ref.lstm_forward(params, x, None, None, lengths)
    r_grads, r_dx = ref.lstm_backward(params, cache, d_out)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {}
    check_close(dx, r_dx, "dx", **tol)
    for name in ("weight_ih_l0", "weight_ih_l0_reverse", "weight_ih_l1", "weight_hh_l0"):
        check_close(grads[name], r_grads[name], name, **tol)
