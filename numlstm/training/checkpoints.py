"""Training checkpoints: the whole state a fit needs to resume, in a file that holds no code.

A checkpoint is the container of :mod:`numlstm._utils.array_container` (an ``.npz``
archive of arrays and a JSON header, the format of :func:`numlstm.save`), with the
header's ``"format"`` ``"numlstm-checkpoint"`` and these keys besides the arrays' list:

- ``"format_version"``: 3 (version 2 files, whose networks predate ``readout``, read
  unchanged; version 1 was a pickle, which is refused: loading it could run code);
- ``"numlstm_version"``, ``"numpy_version"``: versions that wrote the file;
- ``"class"``: the estimator's class name;
- ``"params"``: its ``get_params(deep=False)``;
- ``"fingerprint"``: SHA-256 of the training data, so a resumed fit refuses other data;
- ``"state"``: every other attribute of the estimator: the network (``$network``), the
  optimizer (``$optimizer``: its class and its moments or velocities, step count and
  learning rates), the random generator, the curves, the no-improvement count, and
  ``_fit_state`` (first epoch of the run, early-stopping split, best weights and loss,
  learning-rate decays, whether the run finished).

Values use the kinds of :mod:`numlstm.io`. Every write is atomic (temporary file,
``fsync``, ``os.replace``), so a crash at any moment leaves the previous checkpoint.
Reading checks every array's digest; a damaged, truncated or foreign file raises
:class:`~numlstm.ModelFileError` before anything is resumed.
"""

import hashlib
import re

import numpy as np

from .._utils.array_container import (ModelFileError, describe, guarded, open_archive,
                                      read_arrays, read_header, write_container)
from .._version import __version__
from .network_codec import NetworkDecoder, NetworkEncoder
from .optimizers import AdamOptimizer, SGDOptimizer

__all__ = ["CHECKPOINT_FORMAT_VERSION", "data_fingerprint", "read_checkpoint", "same_param",
           "write_checkpoint"]

#: Version of the checkpoint layout written by :func:`write_checkpoint` (1 was pickle).
CHECKPOINT_FORMAT_VERSION = 3

_FORMAT_NAME = "numlstm-checkpoint"
_ATTRIBUTE_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9_]*$")
_KIND = "checkpoint"
#: Optimizer classes a checkpoint may hold, and the attributes each one has.
_OPTIMIZERS = {
    "AdamOptimizer": (AdamOptimizer, frozenset({"learning_rate_init", "learning_rate",
                                                "beta_1", "beta_2", "epsilon", "t", "ms",
                                                "vs"})),
    "SGDOptimizer": (SGDOptimizer, frozenset({"learning_rate_init", "learning_rate",
                                              "momentum", "nesterov", "velocities"})),
}


def _is_pickle(f):
    """Whether the file starts like a pickle of protocol 2 or later (PROTO opcode)."""
    start = f.tell()
    magic = f.read(2)
    f.seek(start)
    return len(magic) == 2 and magic[0] == 0x80 and 2 <= magic[1] <= 5


class _CheckpointEncoder(NetworkEncoder):
    def encode_other(self, value, where):
        encoded = super().encode_other(value, where)
        if encoded is not None:
            return encoded
        name = type(value).__name__
        if name in _OPTIMIZERS and type(value) is _OPTIMIZERS[name][0]:
            return {"$optimizer": {"class": name,
                                   "state": self.value(dict(vars(value)), where)}}
        # Device copies of the weights (the best epoch's, on the GPU) are stored as the
        # host arrays they hold, so a checkpoint resumes on any machine.
        device_array = getattr(value, "array", value)
        if hasattr(device_array, "copy_to_host"):
            return self.array(device_array.copy_to_host())
        return None


class _CheckpointDecoder(NetworkDecoder):
    def decode_other(self, tag, body):
        if tag != "$optimizer":
            return super().decode_other(tag, body)
        cls, attributes = _OPTIMIZERS[body["class"]]
        state = self.value(body["state"])
        if not isinstance(state, dict) or set(state) != attributes:
            raise ValueError(f"the {body['class']} state has attributes "
                             f"{sorted(state) if isinstance(state, dict) else state!r}, "
                             f"expected {sorted(attributes)}")
        optimizer = cls.__new__(cls)
        optimizer.__dict__.update(state)
        return optimizer


def write_checkpoint(path, *, class_name, params, state, fingerprint):
    """Write a checkpoint to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
    class_name : str
        The estimator's class name.
    params : dict
        Its hyper-parameters.
    state : dict
        Its other attributes (network, optimizer, curves, ``_fit_state``...).
    fingerprint : str or None
        Digest of the training data.

    Raises
    ------
    TypeError
        When a value cannot be stored without pickle (class labels mixing types, say).
    """
    encoder = _CheckpointEncoder()
    header = {
        "format": _FORMAT_NAME, "format_version": CHECKPOINT_FORMAT_VERSION,
        "numlstm_version": __version__, "numpy_version": np.__version__,
        "class": class_name, "fingerprint": fingerprint,
        "params": {name: encoder.value(value, f"parameter {name!r}")
                   for name, value in params.items()},
        "state": {name: encoder.value(value, f"attribute {name!r}")
                  for name, value in state.items()},
    }
    write_container(path, header, encoder.arrays)


def read_checkpoint(path):
    """Read a checkpoint written by :func:`write_checkpoint`.

    Returns
    -------
    checkpoint : dict
        ``"class"`` (str), ``"params"`` and ``"state"`` (dicts of decoded values) and
        ``"fingerprint"``.

    Raises
    ------
    ModelFileError
        When the file is truncated, damaged, not a numlstm checkpoint, of a newer format
        version, or a pickled checkpoint of an earlier numlstm version (refused unread:
        loading a pickle can run code).
    OSError
        When ``path`` cannot be opened.
    """
    what = describe(path)
    with open(path, "rb") as f:
        if _is_pickle(f):
            raise ModelFileError(
                f"{what} is a checkpoint in the pickle format of earlier numlstm versions. "
                "It is not read: unpickling a file can run arbitrary code. Delete it (or, "
                "if you trust it, unpickle it yourself with that version) and start the "
                "fit again to write a checkpoint in the current format.")
        return guarded(what, lambda: _read(f, what), _KIND)


def _read(f, what):
    with open_archive(f, what, _KIND) as archive:
        header = read_header(archive, what, format_name=_FORMAT_NAME,
                             max_version=CHECKPOINT_FORMAT_VERSION, version_of=__version__,
                             kind=_KIND)
        arrays = read_arrays(archive, header)
    decoder = _CheckpointDecoder(arrays)
    name, fingerprint = header["class"], header["fingerprint"]
    if not isinstance(name, str) or not (fingerprint is None or isinstance(fingerprint, str)):
        raise ValueError("the checkpoint's class or fingerprint is not a string")
    params, state = header["params"], header["state"]
    if not (isinstance(params, dict) and isinstance(state, dict)):
        raise ValueError("the checkpoint's params or state is not an object")
    for key in list(params) + list(state):
        if not _ATTRIBUTE_NAME.match(key):
            raise ValueError(f"invalid attribute name {key!r}")
    checkpoint = {"class": name, "fingerprint": fingerprint,
                  "params": {key: decoder.value(value) for key, value in params.items()},
                  "state": {key: decoder.value(value) for key, value in state.items()}}
    decoder.check_all_used()
    return checkpoint


def data_fingerprint(X3, lengths, Y):
    """SHA-256 of the training data (``X3``, ``lengths`` or None, ``Y`` as trained on),
    dtypes and shapes included."""
    digest = hashlib.sha256()
    for arr in (X3, lengths, Y):
        if arr is None:
            digest.update(b"none")
            continue
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def same_param(a, b):
    """Whether two hyper-parameter values are the same (for resuming a checkpoint)."""
    if isinstance(a, (np.random.RandomState, np.random.Generator)) or isinstance(
            b, (np.random.RandomState, np.random.Generator)):
        return type(a) is type(b)  # the generator's state itself is in the checkpoint
    for x in (a, b):
        if isinstance(x, type) or isinstance(x, np.dtype):
            try:
                return np.dtype(a) == np.dtype(b)
            except TypeError:
                return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
