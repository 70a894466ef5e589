"""Checks of the plain-NumPy reference LSTM (tests/lstm_reference.py) itself:
against torch.nn.LSTM and against central finite differences."""

import numpy as np
import pytest

import lstm_reference as ref

# (batch, time, input, hidden, num_layers, bidirectional, ragged, with_state)
CASES = [
    (1, 1, 3, 2, 1, False, False, False),
    (3, 5, 4, 3, 1, False, True, True),
    (2, 4, 3, 2, 2, True, True, True),
    (4, 6, 2, 3, 2, False, True, False),
    (3, 3, 2, 4, 1, True, False, True),
    (3, 5, 3, 2, 3, True, True, False),
]


def make_problem(B, T, I, H, L, bidir, ragged, with_state, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    params = ref.init_params(I, H, L, bidir, rng=rng, scale=0.6)
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((L * D, B, H)) * 0.5 if with_state else None
    c0 = rng.standard_normal((L * D, B, H)) * 0.5 if with_state else None
    lengths = None
    if ragged:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T  # at least one full sequence
        if B > 1:
            lengths[-1] = 1 if T > 1 else T
    d_out = rng.standard_normal((B, T, D * H))
    d_h_n = rng.standard_normal((L * D, B, H))
    d_c_n = rng.standard_normal((L * D, B, H))
    return params, x, h0, c0, lengths, d_out, d_h_n, d_c_n


def torch_run(params, x, h0, c0, lengths, d_out, d_h_n, d_c_n):
    torch = pytest.importorskip("torch", reason="torch is needed to cross-check the reference")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    L, D, I, H = ref.describe(params)
    B, T, _ = x.shape
    dt = torch.float64
    m = torch.nn.LSTM(I, H, num_layers=L, bidirectional=(D == 2), batch_first=True, dtype=dt)
    m.load_state_dict({k: torch.tensor(v, dtype=dt) for k, v in params.items()})
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    ht = torch.tensor(h0 if h0 is not None else np.zeros((L * D, B, H)), dtype=dt,
                      requires_grad=True)
    ct = torch.tensor(c0 if c0 is not None else np.zeros((L * D, B, H)), dtype=dt,
                      requires_grad=True)
    if lengths is not None:
        packed = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=False)
        out_p, (hn, cn) = m(packed, (ht, ct))
        out, _ = pad_packed_sequence(out_p, batch_first=True, total_length=T)
    else:
        out, (hn, cn) = m(xt, (ht, ct))
    loss = ((out * torch.tensor(d_out)).sum() + (hn * torch.tensor(d_h_n)).sum()
            + (cn * torch.tensor(d_c_n)).sum())
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in m.named_parameters()}
    grads["h0"] = ht.grad.numpy()
    grads["c0"] = ct.grad.numpy()
    return out.detach().numpy(), hn.detach().numpy(), cn.detach().numpy(), grads, xt.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: "B{}T{}I{}H{}L{}{}{}{}".format(
    c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "", "rag" if c[6] else "",
    "st" if c[7] else ""))
def test_reference_matches_torch(case):
    params, x, h0, c0, lengths, d_out, d_h_n, d_c_n = make_problem(*case, seed=hash(case) % 1000)
    out, h_n, c_n, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    grads, dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    t_out, t_h, t_c, t_grads, t_dx = torch_run(params, x, h0, c0, lengths, d_out, d_h_n, d_c_n)

    np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n, t_h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c_n, t_c, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, t_dx, rtol=1e-11, atol=1e-12)
    expected_keys = set(params) | ({"h0", "c0"} if h0 is not None else set())
    assert set(grads) == expected_keys
    for k in expected_keys:
        np.testing.assert_allclose(grads[k], t_grads[k], rtol=1e-11, atol=1e-12, err_msg=k)


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

    def loss_of(p, x_, h0_, c0_):
        out, h_n, c_n, _ = ref.lstm_forward(p, x_, h0_, c0_, lengths)
        return np.sum(out * d_out) + np.sum(h_n * d_h_n) + np.sum(c_n * d_c_n)

    out, h_n, c_n, cache = ref.lstm_forward(params, x, h0, c0, lengths)
    grads, dx = ref.lstm_backward(params, cache, d_out, d_h_n, d_c_n)

    rng = np.random.default_rng(0)
    eps = 1e-6
    arrays = dict(params, x=x, h0=h0, c0=c0)
    analytic = dict(grads, x=dx)
    for name, arr in arrays.items():
        flat_idx = rng.choice(arr.size, size=min(arr.size, 8), replace=False)
        for j in flat_idx:
            idx = np.unravel_index(j, arr.shape)
            vals = []
            for sign in (+1, -1):
                a = arr.copy()
                a[idx] += sign * eps
                p = dict(params)
                xx, hh, cc = x, h0, c0
                if name in params:
                    p[name] = a
                elif name == "x":
                    xx = a
                elif name == "h0":
                    hh = a
                else:
                    cc = a
                vals.append(loss_of(p, xx, hh, cc))
            fd = (vals[0] - vals[1]) / (2 * eps)
            assert abs(fd - analytic[name][idx]) <= 1e-7 + 1e-6 * abs(fd), (
                name, idx, fd, analytic[name][idx])
