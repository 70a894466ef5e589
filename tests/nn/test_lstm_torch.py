"""numlstm.LSTM against torch.nn.LSTM(batch_first=True) with copied weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is only used to cross-check numlstm.LSTM")

from helpers import (assert_runs_close, copy_weights_to_torch, random_problem,  # noqa: E402
                     run_numlstm_layer, run_torch_module)
from numlstm import LSTM  # noqa: E402

torch.set_num_threads(1)

# (batch, time, input, hidden, num_layers, bidirectional, lengths or None, with_state)
CASES = [
    (1, 1, 3, 2, 1, False, None, False),
    (3, 5, 4, 3, 1, False, [5, 2, 1], True),
    (2, 4, 3, 4, 2, True, [3, 4], True),
    (4, 3, 2, 3, 2, True, None, False),
    (3, 6, 2, 5, 3, False, [1, 6, 4], False),
    (10, 4, 3, 3, 2, True, [4, 1, 3, 2, 4, 4, 1, 2, 3, 4], True),  # several batch chunks
]


def case_id(c):
    return "B{}T{}I{}H{}L{}{}{}{}".format(c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "",
                                          "rag" if c[6] is not None else "", "st" if c[7] else "")


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case, dtype, tol):
    B, T, I, H, L, bidir, lengths, with_state = case
    rng = np.random.default_rng(B + 10 * T + 100 * H)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32

    module = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir, batch_first=True,
                           dtype=tdtype)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=dtype, random_state=0)
    # keys, order and shapes identical to torch's; numlstm -> torch
    sd = copy_weights_to_torch(layer, module)
    # and torch -> numlstm round trip is exact
    layer.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])

    problem = random_problem(layer, B, T, rng, initial_states=with_state, lengths=lengths,
                             dtype=dtype)
    assert_runs_close(run_numlstm_layer(layer, problem), run_torch_module(module, problem),
                      tol, tol, dtype)
