"""Weights moved between numlstm's layers and PyTorch's ``torch.nn.LSTM``, ``GRU`` and
``RNN``.

The layers use the weight layout, gate order and state-dict keys of PyTorch's modules
(``batch_first=True``), so a conversion is a plain copy of every weight. The functions take
the layer class as an argument, so this module needs none of them. PyTorch is optional: it
is imported only when a conversion runs.
"""

import warnings

import numpy as np

__all__ = ["layer_from_torch", "layer_to_torch"]

_TORCH_DTYPES = ("float32", "float64")


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "PyTorch is required to convert between numlstm.LSTM and torch.nn.LSTM, but "
            "it could not be imported. Install it with `pip install torch` (the CPU build "
            "is enough)."
        ) from exc
    return torch


def _numpy_dtype(torch_dtype):
    """Name of the NumPy float type matching a torch dtype, or None."""
    name = str(torch_dtype).replace("torch.", "")
    return name if name in _TORCH_DTYPES else None


def layer_from_torch(module, layer_cls, *, dtype=None, device="cpu", random_state=None,
                     require_batch_first=True):
    """A new ``layer_cls`` (:class:`~numlstm.LSTM`, :class:`~numlstm.GRU` or
    :class:`~numlstm.RNN`) with the weights of the ``torch.nn`` module of the same name; the
    arguments and checks are those of :func:`numlstm.io.pytorch.lstm_from_torch`."""
    torch = _import_torch()
    name = layer_cls.__name__
    torch_cls = getattr(torch.nn, name)
    if not isinstance(module, torch_cls):
        others = [f"torch.nn.{other} -> numlstm.{other}.from_torch"
                  for other in ("LSTM", "GRU", "RNN") if other != name]
        raise TypeError(
            f"module must be a torch.nn.{name}, got {type(module).__module__}."
            f"{type(module).__qualname__} (for the other cells: {', '.join(others)}).")
    if not module.bias:
        raise ValueError(
            f"module has bias=False: numlstm.{name} always has bias_ih and bias_hh. Use a "
            "module with bias=True (zero biases compute the same function).")
    if not module.batch_first and require_batch_first:
        raise ValueError(
            "module has batch_first=False (inputs of shape (time, batch, features)), but "
            f"numlstm.{name} reads (batch, time, features). The weights are the same either "
            "way: build the module with batch_first=True, or pass "
            "require_batch_first=False and transpose the inputs yourself.")
    # The weights as the module computes with them: attribute access also evaluates
    # parametrizations such as weight normalisation.
    suffixes = ("", "_reverse") if module.bidirectional else ("",)
    proj_size = getattr(module, "proj_size", 0)
    blocks = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + (
        ("weight_hr",) if proj_size else ())
    names = [f"{block}_l{k}{suffix}" for k in range(module.num_layers)
             for suffix in suffixes for block in blocks]
    state = {}
    with torch.no_grad():
        for key in names:
            tensor = getattr(module, key, None)
            if not isinstance(tensor, torch.Tensor):
                raise ValueError(f"module has no tensor {key!r}, which every "
                                 f"torch.nn.{name} of its sizes has")
            state[key] = tensor.detach()
    dtypes = sorted({str(t.dtype) for t in state.values()})
    if len(dtypes) != 1:
        raise TypeError(f"module parameters have mixed dtypes {dtypes}; convert the module "
                        "with module.float() or module.double() first.")
    if dtype is None:
        dtype_name = _numpy_dtype(next(iter(state.values())).dtype)
        if dtype_name is None:
            raise TypeError(
                f"module parameters are {dtypes[0]}, but numlstm.{name} computes in float32 "
                "or float64. Pass dtype=np.float32 (or np.float64) to convert them.")
        dtype = np.dtype(dtype_name)
    kwargs = dict(num_layers=module.num_layers, bidirectional=module.bidirectional,
                  dropout=float(module.dropout), dtype=dtype, random_state=random_state,
                  device=device)
    if layer_cls.cell == "lstm":
        kwargs.update(forget_bias=None, proj_size=proj_size)
    elif layer_cls.cell == "rnn":
        kwargs["nonlinearity"] = module.nonlinearity
    layer = layer_cls(module.input_size, module.hidden_size, **kwargs)
    arrays = {}
    for key, tensor in state.items():
        tensor = tensor.cpu()
        if _numpy_dtype(tensor.dtype) is None:  # float16/bfloat16: NumPy may lack it
            tensor = tensor.to(torch.float64)
        arrays[key] = tensor.numpy()
    layer.load_state_dict(arrays)
    layer.train(module.training)
    return layer


def layer_to_torch(layer, layer_cls):
    """The ``torch.nn`` module of ``layer_cls``'s name holding copies of ``layer``'s weights
    (see :func:`numlstm.io.pytorch.lstm_to_torch`)."""
    torch = _import_torch()
    name = layer_cls.__name__
    if not isinstance(layer, layer_cls):
        raise TypeError(f"layer must be a numlstm.{name}, got {type(layer).__name__}")
    if getattr(layer, "peephole", False):
        raise ValueError("layer has peephole connections, which torch.nn.LSTM does not "
                         "have: it cannot be converted")
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[layer.dtype.name]
    kwargs = {}
    if layer_cls.cell == "lstm":
        kwargs["proj_size"] = layer.proj_size
    elif layer_cls.cell == "rnn":
        kwargs["nonlinearity"] = layer.nonlinearity
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dropout.*num_layers", category=UserWarning)
        module = getattr(torch.nn, name)(
            layer.input_size, layer.hidden_size, num_layers=layer.num_layers, bias=True,
            batch_first=True, dropout=layer.dropout, bidirectional=layer.bidirectional,
            dtype=torch_dtype, **kwargs)
    state = {key: torch.from_numpy(np.array(value, copy=True))
             for key, value in layer.state_dict().items()}
    module.load_state_dict(state, strict=True)
    module.train(layer.training)
    return module
