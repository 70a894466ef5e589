"""numlstm.LSTM.backward against central finite differences (float64).

Loss = sum(R_out * out) + sum(R_h * h_n) + sum(R_c * c_n) with random R's, whose
gradient is exactly backward(R_out, R_h, R_c).  A random subset of coordinates
of every parameter, the input, h0 and c0 is checked.
"""

import numpy as np
import pytest

from numlstm import LSTM

EPS = 1e-6
N_COORDS = 6

# (batch, time, input, hidden, num_layers, bidirectional, lengths or None)
CASES = [
    (1, 1, 2, 3, 1, False, None),
    (3, 5, 3, 2, 1, True, [5, 1, 3]),
    (2, 4, 2, 3, 2, True, [2, 4]),
    (4, 3, 2, 2, 3, False, [3, 1, 2, 3]),
    (2, 6, 3, 4, 2, False, None),
    (9, 3, 2, 2, 2, True, [3, 1, 2, 3, 2, 1, 3, 3, 2]),  # several batch chunks
]


def case_id(c):
    return "B{}T{}I{}H{}L{}{}{}".format(c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "",
                                        "rag" if c[6] is not None else "")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradients_finite_differences(case):
    B, T, I, H, L, bidir, lengths = case
    D = 2 if bidir else 1
    rng = np.random.default_rng(B * 100 + T * 10 + L)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=np.float64, forget_bias=None,
                 random_state=1)
    # larger-than-default weights so every gate is away from its linear regime
    layer.load_state_dict({k: rng.uniform(-0.7, 0.7, v.shape)
                           for k, v in layer.state_dict().items()})
    x = rng.standard_normal((B, T, I))
    h0 = 0.5 * rng.standard_normal((L * D, B, H))
    c0 = 0.5 * rng.standard_normal((L * D, B, H))
    lengths = None if lengths is None else np.array(lengths)
    R_out = rng.standard_normal((B, T, D * H))
    R_h = rng.standard_normal((L * D, B, H))
    R_c = rng.standard_normal((L * D, B, H))

    def loss(x_, h0_, c0_):
        out, (h_n, c_n) = layer.forward(x_, h0=h0_, c0=c0_, lengths=lengths)
        return float(np.sum(R_out * out) + np.sum(R_h * h_n) + np.sum(R_c * c_n))

    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(R_out, d_h_n=R_h, d_c_n=R_c)
    grads = {k: np.array(v, copy=True) for k, v in grads.items()}
    dx = np.array(dx, copy=True)
    assert set(grads) == set(layer.state_dict()) | {"h0", "c0"}

    checked = 0
    # parameters: perturb through the live views of flat_parameters
    params = layer.parameters()
    for name, p in params.items():
        for j in rng.choice(p.size, size=min(p.size, N_COORDS), replace=False):
            idx = np.unravel_index(j, p.shape)
            orig = p[idx]
            p[idx] = orig + EPS
            lp = loss(x, h0, c0)
            p[idx] = orig - EPS
            lm = loss(x, h0, c0)
            p[idx] = orig
            fd = (lp - lm) / (2 * EPS)
            assert abs(fd - grads[name][idx]) <= 1e-7 + 1e-6 * abs(fd), (
                name, idx, fd, grads[name][idx])
            checked += 1
    # input, h0, c0
    for name, arr, g in (("x", x, dx), ("h0", h0, grads["h0"]), ("c0", c0, grads["c0"])):
        for j in rng.choice(arr.size, size=min(arr.size, N_COORDS), replace=False):
            idx = np.unravel_index(j, arr.shape)
            vals = []
            for sign in (1, -1):
                a = arr.copy()
                a[idx] += sign * EPS
                args = dict(x=x, h0=h0, c0=c0)
                args[name] = a
                vals.append(loss(args["x"], args["h0"], args["c0"]))
            fd = (vals[0] - vals[1]) / (2 * EPS)
            assert abs(fd - g[idx]) <= 1e-7 + 1e-6 * abs(fd), (name, idx, fd, g[idx])
            checked += 1
    assert checked >= 3 * min(N_COORDS, B * T * I)
    # padded input steps get exactly zero gradient
    if lengths is not None:
        for b, n in enumerate(lengths):
            assert np.all(dx[b, n:] == 0.0)
