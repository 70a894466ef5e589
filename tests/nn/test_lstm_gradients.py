"""numlstm.LSTM.backward against central finite differences (float64).

Loss = sum(R_out * out) + sum(R_h * h_n) + sum(R_c * c_n) with random R's, whose
gradient is exactly backward(R_out, R_h, R_c).  A random subset of coordinates
of every parameter, the input, h0 and c0 is checked.
"""

import numpy as np
import pytest

from helpers import check_gradient_by_finite_differences, random_problem, sample_indices
from numlstm import LSTM

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
    rng = np.random.default_rng(B * 100 + T * 10 + L)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=np.float64, forget_bias=None,
                 random_state=1)
    # larger-than-default weights so every gate is away from its linear regime
    problem = random_problem(layer, B, T, rng, weight_scale=0.7, lengths=lengths)
    x, (h0, c0), lengths = problem.x, problem.initial_states, problem.lengths
    R_out, (R_h, R_c) = problem.d_out, problem.d_final_states

    def loss():
        out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
        return float(np.sum(R_out * out) + np.sum(R_h * h_n) + np.sum(R_c * c_n))

    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(R_out, d_h_n=R_h, d_c_n=R_c)
    grads = {k: np.array(v, copy=True) for k, v in grads.items()}
    dx = np.array(dx, copy=True)
    assert set(grads) == set(layer.state_dict()) | {"h0", "c0"}

    checked = 0
    # parameters are perturbed through the live views of flat_parameters
    targets = [(name, p, grads[name]) for name, p in layer.parameters().items()]
    targets += [("x", x, dx), ("h0", h0, grads["h0"]), ("c0", c0, grads["c0"])]
    for name, array, analytic in targets:
        checked += check_gradient_by_finite_differences(
            loss, array, analytic, name, sample_indices(rng, array, N_COORDS))
    assert checked >= 3 * min(N_COORDS, B * T * I)
    # padded input steps get exactly zero gradient
    if lengths is not None:
        for b, n in enumerate(lengths):
            assert np.all(dx[b, n:] == 0.0)
