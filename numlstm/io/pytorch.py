"""Move LSTM weights between :class:`numlstm.LSTM` and PyTorch's ``torch.nn.LSTM``.

(:meth:`numlstm.GRU.from_torch`, :meth:`numlstm.RNN.from_torch` and their ``to_torch``
methods do the same for ``torch.nn.GRU`` and ``torch.nn.RNN``; the conversions themselves
are in :mod:`numlstm.nn.torch_interop`.)

:class:`numlstm.LSTM` uses the weight layout, the gate order (input, forget, cell,
output) and the state-dict keys of ``torch.nn.LSTM(batch_first=True)``, so a conversion
is a plain copy of every weight: converting a module and converting it back gives
bit-identical weights, and both compute the same function.

PyTorch is an optional dependency; it is imported only when one of these functions is
called.
"""

from ..nn import LSTM

__all__ = ["lstm_from_torch", "lstm_to_torch"]


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
    >>> from numlstm.io.pytorch import lstm_from_torch
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
    return LSTM.from_torch(module, dtype=dtype, device=device, random_state=random_state,
                           require_batch_first=require_batch_first)


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
    >>> from numlstm.io.pytorch import lstm_to_torch
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
    if not isinstance(layer, LSTM):
        raise TypeError(f"layer must be a numlstm.LSTM, got {type(layer).__name__}")
    return layer.to_torch()
