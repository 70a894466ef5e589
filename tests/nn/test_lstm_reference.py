"""Checks of the plain-NumPy reference LSTM (tests/lstm_reference.py) itself:
against torch.nn.LSTM and against central finite differences."""

import numpy as np
import pytest

import lstm_reference as ref
from helpers import (RecurrentProblem, assert_close, assert_gradients_close,
                     check_gradient_by_finite_differences, run_torch_module, sample_indices)
from helpers import random_reference_problem as make_problem

# (batch, time, input, hidden, num_layers, bidirectional, ragged, with_state)
CASES = [
    (1, 1, 3, 2, 1, False, False, False),
    (3, 5, 4, 3, 1, False, True, True),
    (2, 4, 3, 2, 2, True, True, True),
    (4, 6, 2, 3, 2, False, True, False),
    (3, 3, 2, 4, 1, True, False, True),
    (3, 5, 3, 2, 3, True, True, False),
]


def torch_run(params, x, h0, c0, lengths, d_out, d_h_n, d_c_n):
    torch = pytest.importorskip("torch", reason="torch is needed to cross-check the reference")

    L, D, I, H = ref.describe(params)
    module = torch.nn.LSTM(I, H, num_layers=L, bidirectional=(D == 2), batch_first=True,
                           dtype=torch.float64)
    module.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()})
    states = None if h0 is None else (h0, c0)
    return run_torch_module(module, RecurrentProblem(x, states, lengths, d_out, (d_h_n, d_c_n)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "B{}T{}I{}H{}L{}{}{}{}".format(
    c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "", "rag" if c[6] else "",
    "st" if c[7] else ""))
def test_reference_matches_torch(case):
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case, seed=hash(case) % 1000)
    out, h_n, c_n, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    grads, dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    expected = torch_run(params, x, h0, c0, lengths, d_out, d_h_n, d_c_n)

    assert_close(out, expected.out, 1e-12, 1e-13, "out")
    assert_close(h_n, expected.final_states[0], 1e-12, 1e-13, "h_n")
    assert_close(c_n, expected.final_states[1], 1e-12, 1e-13, "c_n")
    assert_close(dx, expected.dx, 1e-11, 1e-12, "dx")
    assert set(grads) == set(params) | ({"h0", "c0"} if h0 is not None else set())
    assert_gradients_close(grads, expected.gradients, 1e-11, 1e-12)


def test_reference_padding_semantics():
    """Padded steps: zero output, zero input-gradient, state unaffected by padded values."""
    params, x, h0, c0, _, d_out, d_h_n, d_c_n = make_problem(3, 5, 2, 3, 2, True, False, True, 7)
    lengths = np.array([5, 2, 3])
    out, h_n, c_n, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    grads, dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    for b, n in enumerate(lengths):
        assert np.all(out[b, n:] == 0.0)
        assert np.all(dx[b, n:] == 0.0)
        assert np.any(out[b, :n] != 0.0)
    # garbage in padded steps changes nothing
    x2 = x.copy()
    x2[1, 2:] = 1e3
    x2[2, 3:] = -7.0
    out2, h2, c2, cache2 = ref.lstm_forward(params, x2, h0, c0, lengths)
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(h_n, h2)
    np.testing.assert_array_equal(c_n, c2)
    # truncated sequence run alone gives the same result as in the ragged batch
    o1, h1, c1, _ = ref.lstm_forward(params, x[1:2, :2], h0[:, 1:2], c0[:, 1:2])
    np.testing.assert_allclose(o1[0], out[1, :2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(h1[:, 0], h_n[:, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c1[:, 0], c_n[:, 1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("case", [CASES[2], CASES[1]], ids=["L2bi_rag", "L1_rag"])
def test_reference_finite_differences(case):
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case, seed=3)

    def loss():
        out, h_n, c_n, _ = ref.lstm_forward(params, x, h0, c0, lengths)
        return np.sum(out * d_out) + np.sum(h_n * d_h_n) + np.sum(c_n * d_c_n)

    out, h_n, c_n, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    grads, dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)

    rng = np.random.default_rng(0)
    arrays = dict(params, x=x, h0=h0, c0=c0)
    analytic = dict(grads, x=dx)
    for name, arr in arrays.items():
        check_gradient_by_finite_differences(loss, arr, analytic[name], name,
                                             sample_indices(rng, arr, 8))
