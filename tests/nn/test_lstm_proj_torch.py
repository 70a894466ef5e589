"""numlstm.LSTM(proj_size=P) against torch.nn.LSTM(proj_size=P, batch_first=True)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is only used to cross-check numlstm")

from helpers import (assert_runs_close, copy_weights_to_torch, random_problem,  # noqa: E402
                     run_numlstm_layer, run_torch_module)
from numlstm import LSTM  # noqa: E402

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

# (batch, time, input, hidden, proj, layers, bidirectional, lengths or None, with state)
CASES = [
    (3, 5, 4, 3, 1, 1, False, [5, 2, 1], True),
    (2, 4, 3, 5, 2, 2, True, None, False),
    (10, 4, 3, 4, 3, 2, True, [4, 1, 3, 2, 4, 4, 1, 2, 3, 4], True),  # two batch slices
]


def case_id(c):
    return "B{}T{}I{}H{}P{}L{}{}{}{}".format(*c[:6], "bi" if c[6] else "",
                                             "rag" if c[7] is not None else "",
                                             "st" if c[8] else "")


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case, dtype, tol):
    B, T, I, H, P, L, bidir, lengths, with_state = case
    rng = np.random.default_rng(B + 10 * T + 100 * H)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir, batch_first=True,
                           proj_size=P, dtype=tdtype)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, proj_size=P, dtype=dtype,
                 random_state=0)
    copy_weights_to_torch(layer, module)

    problem = random_problem(layer, B, T, rng, initial_states=with_state, lengths=lengths,
                             dtype=dtype)
    assert_runs_close(run_numlstm_layer(layer, problem), run_torch_module(module, problem),
                      tol, tol, dtype)


def test_to_torch_with_projection_and_peephole_refusal():
    layer = LSTM(3, 4, num_layers=2, proj_size=2, dtype=np.float64, random_state=0).eval()
    module = layer.to_torch()
    assert module.proj_size == 2
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    with torch.no_grad():
        expected, _ = module(torch.from_numpy(x))
    out, _ = layer.forward(x, requires_grad=False)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="peephole"):
        LSTM(3, 4, peephole=True).to_torch()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_torch_with_projection_round_trip(bidirectional):
    module = torch.nn.LSTM(3, 6, num_layers=2, proj_size=2, bidirectional=bidirectional,
                           batch_first=True).double().eval()
    layer = LSTM.from_torch(module)
    assert (layer.proj_size, layer.hidden_size) == (2, 6)
    x = np.random.default_rng(1).normal(size=(3, 5, 3))
    with torch.no_grad():
        expected, (h_t, c_t) = module(torch.from_numpy(x))
    out, (h_n, c_n) = layer.forward(x, requires_grad=False)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(h_n, h_t.numpy(), atol=1e-12)
    np.testing.assert_allclose(c_n, c_t.numpy(), atol=1e-12)
    back = layer.to_torch()
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key].numpy(), value.numpy())
