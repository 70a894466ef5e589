"""numlstm.GRU and numlstm.RNN against torch.nn.GRU / torch.nn.RNN (batch_first=True) with
copied weights: outputs, final states and every gradient, ragged batches included."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is only used to cross-check numlstm")

from helpers import (assert_runs_close, copy_weights_to_torch, random_problem,  # noqa: E402
                     run_numlstm_layer, run_torch_module)
from numlstm import GRU, RNN  # noqa: E402

torch.set_num_threads(1)

# (batch, time, input, hidden, layers, bidirectional, lengths or None, with h0)
CASES = [
    (3, 5, 4, 3, 1, False, [5, 2, 1], True),
    (2, 4, 3, 4, 2, True, None, False),
    (10, 4, 3, 3, 2, True, [4, 1, 3, 2, 4, 4, 1, 2, 3, 4], True),  # two batch slices
]
MODULES = {
    "gru": (lambda I, H, **kw: GRU(I, H, **kw), torch.nn.GRU, {}),
    "rnn_tanh": (lambda I, H, **kw: RNN(I, H, **kw), torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (lambda I, H, **kw: RNN(I, H, nonlinearity="relu", **kw), torch.nn.RNN,
                 {"nonlinearity": "relu"}),
}


def case_id(c):
    return "B{}T{}I{}H{}L{}{}{}{}".format(*c[:5], "bi" if c[5] else "",
                                          "rag" if c[6] is not None else "",
                                          "st" if c[7] else "")


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("cell", list(MODULES))
def test_matches_torch(cell, case, dtype, tol):
    B, T, I, H, L, bidir, lengths, with_state = case
    rng = np.random.default_rng(B + 10 * T + 100 * H)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    make, module_cls, module_kw = MODULES[cell]
    module = module_cls(I, H, num_layers=L, bidirectional=bidir, batch_first=True,
                        dtype=tdtype, **module_kw)
    layer = make(I, H, num_layers=L, bidirectional=bidir, dtype=dtype, random_state=0)
    copy_weights_to_torch(layer, module)
    layer.load_state_dict({k: v for k, v in module.state_dict().items()})  # tensors too

    problem = random_problem(layer, B, T, rng, initial_states=with_state, lengths=lengths,
                             dtype=dtype)
    assert_runs_close(run_numlstm_layer(layer, problem), run_torch_module(module, problem),
                      tol, tol, dtype)


@pytest.mark.parametrize("cell", list(MODULES))
def test_from_torch_and_to_torch(cell):
    make, module_cls, module_kw = MODULES[cell]
    torch.manual_seed(0)
    module = module_cls(3, 4, num_layers=2, bidirectional=True, batch_first=True,
                        dtype=torch.float64, **module_kw).eval()
    cls = type(make(3, 4))
    layer = cls.from_torch(module)
    assert type(layer) is cls and layer.dtype == np.float64 and not layer.training
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    with torch.no_grad():
        expected, h_expected = module(torch.from_numpy(x))
    out, h_n = layer.forward(x, requires_grad=False)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(h_n, h_expected.numpy(), atol=1e-12)
    back = layer.to_torch()
    assert type(back) is module_cls and back.batch_first
    assert getattr(back, "nonlinearity", None) == getattr(module, "nonlinearity", None)
    for k, v in module.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    with pytest.raises(TypeError, match="torch.nn.LSTM -> numlstm.LSTM.from_torch"):
        cls.from_torch(torch.nn.LSTM(3, 4, batch_first=True))
    with pytest.raises(ValueError, match="batch_first=False"):
        cls.from_torch(module_cls(3, 4, **module_kw))


@pytest.mark.parametrize("torch_dtype", [torch.bfloat16, torch.float16])
def test_load_state_dict_takes_half_precision_tensors(torch_dtype):
    """NumPy has no bfloat16: such tensors are read through float32, exactly."""
    torch.manual_seed(0)
    module = torch.nn.GRU(2, 3, batch_first=True).to(torch_dtype)
    for dtype in (np.float32, np.float64):
        layer = GRU(2, 3, dtype=dtype)
        layer.load_state_dict(module.state_dict())
        for key, tensor in module.state_dict().items():
            expected = tensor.to(torch.float64).numpy()
            np.testing.assert_array_equal(layer.state_dict()[key], expected)
