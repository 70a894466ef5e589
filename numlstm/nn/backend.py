"""The one place that chooses where the kernels run (CPU or CUDA).

A backend runs one recurrent layer (all its directions; LSTM, GRU or RNN cell, see
:class:`~numlstm.nn.layer_spec.LayerSpec`) forward, forward without caches, or backward,
on host NumPy arrays given and returned by the layer classes of :mod:`numlstm.nn`. The
layer class never touches a kernel directly, and the kernels know nothing about layers or
estimators:
:class:`~numlstm.nn.cpu_backend.CPUBackend` drives :mod:`numlstm.kernels.cpu`,
:class:`~numlstm.nn.cuda_backend.CUDABackend` drives :mod:`numlstm.kernels.cuda`. The CUDA
backend also takes and returns device arrays (``forward_device``, ``backward_device``) for
the device-resident training of :mod:`numlstm.training.device_trainer`; how an estimator's
fit runs its steps is chosen in :mod:`numlstm.training.trainer`.
"""

__all__ = ["get_backend", "resolve_device"]

_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device):
    """Map ``"auto"``/``"cpu"``/``"cuda"`` to the device that will run the kernels.

    Raises
    ------
    ValueError
        If ``device`` is not one of the known names.
    RuntimeError
        If ``"cuda"`` is asked for and no usable GPU is present (the message says what is
        missing).
    """
    if not isinstance(device, str) or device not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    from .._utils import cuda_support as _cuda_support

    problem = _cuda_support.why_unavailable()
    if device == "auto":
        # The simulator is for testing kernels: far too slow to be chosen automatically.
        return "cpu" if problem or _cuda_support.is_simulator() else "cuda"
    if problem:
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable: {problem}")
    return "cuda"


_backends = {}


def get_backend(device):
    """Return the backend object for a device name (see :func:`resolve_device`)."""
    name = resolve_device(device)
    if name not in _backends:
        if name == "cpu":
            from .cpu_backend import CPUBackend

            _backends[name] = CPUBackend()
        else:
            from .cuda_backend import CUDABackend

            _backends[name] = CUDABackend()
    return _backends[name]
