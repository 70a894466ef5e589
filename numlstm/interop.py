"""Move LSTM weights between :class:`numlstm.LSTM` and PyTorch's ``torch.nn.LSTM``.

(:meth:`numlstm.GRU.from_torch`, :meth:`numlstm.RNN.from_torch` and their ``to_torch``
methods do the same for ``torch.nn.GRU`` and ``torch.nn.RNN``, through the functions here.)

:class:`numlstm.LSTM` uses the weight layout, the gate order (input, forget, cell,
output) and the state-dict keys of ``torch.nn.LSTM(batch_first=True)``, so a conversion
is a plain copy of every weight: converting a module and converting it back gives
bit-identical weights, and both compute the same function.

PyTorch is an optional dependency; it is imported only when one of these functions is
called.
"""

import warnings

import numpy as np

from .layers import LSTM, RNN

__all__ = ["lstm_from_torch", "lstm_to_torch"]

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


def lstm_from_torch(module, *, dtype=None, device="cpu", random_state=None,
                    require_batch_first=True):
    """Build a :class:`numlstm.LSTM` with the weights of a ``torch.nn.LSTM``.

    The result has the module's sizes, number of layers, directions and dropout, is in
    training mode exactly when the module is, and holds copies of its weights (the two
    do not share memory). For the same weights and inputs both compute the same
    outputs, up to floating-point rounding.

    Parameters
    ----------
    module : torch.nn.LSTM
        The module to convert. It must have ``bias=True`` and (by default)
        ``batch_first=True``; a ``proj_size`` carries over. Its parameters may live on
        any device; they are copied to host memory.
    dtype : {None, numpy.float32, numpy.float64, "float32", "float64"}, default=None
        Float type of the new layer. ``None`` keeps the module's dtype, which must then
        be float32 or float64; give a dtype to convert, e.g. a float16 module with
        ``dtype=np.float32``.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the new layer's kernels run (see :class:`numlstm.LSTM`); unrelated to the
        device of the module.
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Seeds the dropout masks of the new layer (weights are copied, not drawn).
    require_batch_first : bool, default=True
        :class:`numlstm.LSTM` reads inputs of shape (batch, time, features), like a
        module built with ``batch_first=True``. The weights do not depend on that
        setting, so pass ``False`` to convert a time-first module anyway (and transpose
        its inputs with ``x.transpose(1, 0, 2)`` yourself).

    Returns
    -------
    layer : numlstm.LSTM
        A new layer whose :meth:`~numlstm.LSTM.state_dict` equals the module's.
        For a module with parametrized weights (e.g.
        ``torch.nn.utils.parametrizations.weight_norm``), the weights it computes
        with.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    TypeError
        If ``module`` is not a ``torch.nn.LSTM`` (a GRU or plain RNN, say), or its
        parameters are not float32/float64 and no ``dtype`` is given, or its parameters
        do not all have the same dtype.
    ValueError
        If the module has ``bias=False``, or ``batch_first=False`` while
        ``require_batch_first`` is true, or weights that are not finite.

    See Also
    --------
    lstm_to_torch : The conversion the other way.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from numlstm.interop import lstm_from_torch
    >>> module = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True).double().eval()
    >>> layer = lstm_from_torch(module)
    >>> layer
    LSTM(3, 5, num_layers=2, dtype=float64, device='cpu')
    >>> x = np.random.default_rng(0).normal(size=(4, 7, 3))
    >>> out, (h_n, c_n) = layer.forward(x, requires_grad=False)
    >>> out_torch, _ = module(torch.from_numpy(x))
    >>> bool(np.allclose(out, out_torch.detach().numpy(), atol=1e-12))
    True

    Loading a saved PyTorch state dict goes through a module of the right shape:

    >>> module.load_state_dict(module.state_dict())  # e.g. torch.load("weights.pt")
    <All keys matched successfully>
    >>> layer = lstm_from_torch(module)
    """
    return _from_torch(module, LSTM, dtype=dtype, device=device, random_state=random_state,
                       require_batch_first=require_batch_first)


def _from_torch(module, layer_cls, *, dtype=None, device="cpu", random_state=None,
                require_batch_first=True):
    """:func:`lstm_from_torch` for any of the layer classes (``torch.nn.<same name>``)."""
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
    if layer_cls is LSTM:
        kwargs.update(forget_bias=None, proj_size=proj_size)
    elif layer_cls is RNN:
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


def lstm_to_torch(layer):
    """Build a ``torch.nn.LSTM(batch_first=True)`` with the weights of a :class:`numlstm.LSTM`.

    The module has the layer's sizes, number of layers, directions, dropout and float
    type (float32 or float64), lives on the CPU, is in training mode exactly when the
    layer is, and holds copies of its weights. Converting back with
    :func:`lstm_from_torch` gives a layer with bit-identical weights.

    Parameters
    ----------
    layer : numlstm.LSTM
        The layer to convert.

    Returns
    -------
    module : torch.nn.LSTM
        A new module with ``batch_first=True``, ``bias=True`` and the layer's
        ``proj_size``.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    TypeError
        If ``layer`` is not a :class:`numlstm.LSTM`.
    ValueError
        If the layer has peephole connections (PyTorch has no such LSTM).

    See Also
    --------
    lstm_from_torch : The conversion the other way.

    Notes
    -----
    PyTorch applies dropout only between layers, like numlstm; a one-layer module with
    ``dropout > 0`` makes PyTorch warn, so that warning is silenced here.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from numlstm import LSTM
    >>> from numlstm.interop import lstm_to_torch
    >>> layer = LSTM(3, 5, bidirectional=True, dtype=np.float64, random_state=0).eval()
    >>> module = lstm_to_torch(layer)
    >>> module
    LSTM(3, 5, batch_first=True, bidirectional=True)
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 3))
    >>> out_torch, _ = module(torch.from_numpy(x))
    >>> out, _ = layer.forward(x, requires_grad=False)
    >>> bool(np.allclose(out, out_torch.detach().numpy(), atol=1e-12))
    True
    """
    return _to_torch(layer, LSTM)


def _to_torch(layer, layer_cls):
    """:func:`lstm_to_torch` for any of the layer classes."""
    torch = _import_torch()
    name = layer_cls.__name__
    if not isinstance(layer, layer_cls):
        raise TypeError(f"layer must be a numlstm.{name}, got {type(layer).__name__}")
    if getattr(layer, "peephole", False):
        raise ValueError("layer has peephole connections, which torch.nn.LSTM does not "
                         "have: it cannot be converted")
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[layer.dtype.name]
    kwargs = {}
    if layer_cls is LSTM:
        kwargs["proj_size"] = layer.proj_size
    elif layer_cls is RNN:
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
