"""numlstm.io.pytorch: torch.nn.LSTM <-> numlstm.LSTM conversions."""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the interop functions convert to and from torch")

from numlstm import LSTM  # noqa: E402
from numlstm.io.pytorch import lstm_from_torch, lstm_to_torch  # noqa: E402

torch.set_num_threads(1)

CONFIGS = [  # (input, hidden, num_layers, bidirectional, dropout)
    (3, 4, 1, False, 0.0),
    (2, 5, 2, True, 0.25),
    (4, 3, 3, False, 0.0),
]


def config_id(c):
    return "I{}H{}L{}{}{}".format(c[0], c[1], c[2], "bi" if c[3] else "",
                                  "drop" if c[4] else "")


def torch_module(config, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    inp, hid, layers, bidir, dropout = config
    return torch.nn.LSTM(inp, hid, num_layers=layers, bidirectional=bidir, dropout=dropout,
                         batch_first=True, dtype=dtype)


def assert_same_weights(layer, module):
    ours = layer.state_dict()
    theirs = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype, key
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_from_torch_matches_torch_outputs(config, dtype, tol):
    module = torch_module(config, dtype).eval()
    layer = lstm_from_torch(module)
    assert isinstance(layer, LSTM)
    assert layer.dtype == np.dtype(str(dtype).replace("torch.", ""))
    assert (layer.input_size, layer.hidden_size, layer.num_layers, layer.bidirectional,
            layer.dropout) == config
    assert layer.training is False
    assert_same_weights(layer, module)

    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 6, config[0]))
    D = 2 if config[3] else 1
    h0 = rng.normal(size=(config[2] * D, 5, config[1]))
    c0 = rng.normal(size=(config[2] * D, 5, config[1]))
    out, (h_n, c_n) = layer.forward(x, h0, c0, requires_grad=False)
    with torch.no_grad():
        t_out, (t_h, t_c) = module(torch.tensor(x, dtype=dtype),
                                   (torch.tensor(h0, dtype=dtype), torch.tensor(c0, dtype=dtype)))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(h_n, t_h.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(c_n, t_c.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_to_torch_matches_numlstm_outputs(config, dtype):
    inp, hid, layers, bidir, dropout = config
    layer = LSTM(inp, hid, num_layers=layers, bidirectional=bidir, dropout=dropout,
                 dtype=dtype, random_state=3).eval()
    module = lstm_to_torch(layer)
    assert isinstance(module, torch.nn.LSTM)
    assert module.batch_first and module.bias and module.proj_size == 0
    assert (module.input_size, module.hidden_size, module.num_layers, module.bidirectional,
            module.dropout) == config
    assert module.training is False
    assert_same_weights(layer, module)
    # Copies, not shared memory.
    with torch.no_grad():
        module.weight_hh_l0.zero_()
    assert np.any(layer.state_dict()["weight_hh_l0"] != 0)

    module = lstm_to_torch(layer)
    x = np.random.default_rng(2).normal(size=(3, 5, inp)).astype(dtype)
    out, (h_n, _) = layer.forward(x, requires_grad=False)
    with torch.no_grad():
        t_out, (t_h, _) = module(torch.from_numpy(x))
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out, t_out.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(h_n, t_h.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_round_trips_are_exact(config):
    module = torch_module(config, torch.float32).train()
    back = lstm_to_torch(lstm_from_torch(module))
    for key, value in module.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert back.training is True and back.dropout == module.dropout

    layer = LSTM(*config[:2], num_layers=config[2], bidirectional=config[3],
                 dropout=config[4], dtype=np.float64, random_state=0)
    again = lstm_from_torch(lstm_to_torch(layer))
    assert again.training is True and again.dtype == layer.dtype
    np.testing.assert_array_equal(again.flat_parameters, layer.flat_parameters)
    assert again.flat_parameters.tobytes() == layer.flat_parameters.tobytes()


def test_from_torch_gradients_match_torch():
    module = torch_module(CONFIGS[1], torch.float64).eval()
    layer = lstm_from_torch(module)
    x = np.random.default_rng(4).normal(size=(3, 4, 2))
    out, _ = layer.forward(x)
    grads, dx = layer.backward(np.ones_like(out))
    xt = torch.tensor(x, requires_grad=True)
    module(xt)[0].sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, param in module.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_dtype_conversion_and_half_precision():
    module = torch_module(CONFIGS[0], torch.float16)
    with pytest.raises(TypeError, match="float16.*Pass dtype=np.float32"):
        lstm_from_torch(module)
    layer = lstm_from_torch(module, dtype=np.float32)
    assert layer.dtype == np.float32
    np.testing.assert_array_equal(layer.state_dict()["weight_ih_l0"],
                                  module.weight_ih_l0.detach().float().numpy())
    layer64 = lstm_from_torch(torch_module(CONFIGS[0], torch.float32), dtype="float64")
    assert layer64.dtype == np.float64


def test_from_torch_loads_a_saved_state_dict(tmp_path):
    src = torch_module(CONFIGS[1], torch.float32)
    torch.save(src.state_dict(), tmp_path / "weights.pt")
    dst = torch_module(CONFIGS[1], torch.float32, seed=99)
    dst.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    assert_same_weights(lstm_from_torch(dst), src)


def test_random_state_and_device_are_passed_on():
    module = torch_module(CONFIGS[1], torch.float32).train()
    a = lstm_from_torch(module, random_state=0)
    b = lstm_from_torch(module, random_state=0)
    assert a.device == "cpu"
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])


@pytest.mark.parametrize("kwargs,match", [
    ({"bias": False}, "bias=False"),
    ({"batch_first": False}, "batch_first=False"),
])
def test_from_torch_rejects_unsupported_modules(kwargs, match):
    options = dict(batch_first=True)
    options.update(kwargs)
    module = torch.nn.LSTM(3, 4, **options)
    with pytest.raises(ValueError, match=match):
        lstm_from_torch(module)


def test_parametrized_weights_are_evaluated():
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, batch_first=True, dtype=torch.float64)
    normed = torch.nn.utils.parametrizations.weight_norm(module, name="weight_hh_l0").eval()
    assert "weight_hh_l0" not in dict(normed.named_parameters())
    layer = lstm_from_torch(normed)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    with torch.no_grad():
        expected, _ = normed(torch.from_numpy(x))
    np.testing.assert_allclose(layer.forward(x, requires_grad=False)[0], expected.numpy(),
                               atol=1e-12)


def test_time_first_module_on_request():
    module = torch.nn.LSTM(3, 4, batch_first=False, dtype=torch.float64).eval()
    layer = lstm_from_torch(module, require_batch_first=False)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    with torch.no_grad():
        t_out, _ = module(torch.from_numpy(x.transpose(1, 0, 2)))
    out, _ = layer.forward(x, requires_grad=False)
    np.testing.assert_allclose(out, t_out.numpy().transpose(1, 0, 2), atol=1e-12)


def test_from_torch_rejects_other_modules_and_bad_weights():
    with pytest.raises(TypeError, match="torch.nn.LSTM.*GRU"):
        lstm_from_torch(torch.nn.GRU(3, 4, batch_first=True))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        lstm_from_torch(LSTM(3, 4))
    module = torch.nn.LSTM(3, 4, batch_first=True)
    with torch.no_grad():
        module.weight_hh_l0[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lstm_from_torch(module)
    with pytest.raises(TypeError, match="numlstm.LSTM"):
        lstm_to_torch(module)


def test_one_layer_dropout_does_not_warn():
    import warnings
    layer = LSTM(2, 3, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = lstm_to_torch(layer)
    assert module.dropout == 0.5


@pytest.mark.parametrize("func", [lstm_from_torch, lstm_to_torch])
def test_clear_error_without_torch(monkeypatch, func):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        func(LSTM(2, 3))
