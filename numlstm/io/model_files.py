"""Save and load models in a versioned file format that holds no code.

:func:`save` writes a fitted (or unfitted) :class:`~numlstm.LSTMRegressor`,
:class:`~numlstm.LSTMClassifier`, or a :class:`~numlstm.LSTM`, :class:`~numlstm.GRU` or
:class:`~numlstm.RNN` layer to one file; :func:`load`
reads it back. Unlike :mod:`pickle`, loading a file can never run code: the file holds
only numeric and string arrays and a JSON header, and :func:`load` reads it with
``numpy.load(..., allow_pickle=False)`` and rebuilds the object from a fixed list of
known classes. Predictions of a loaded model are bit-identical to the saved one's.

.. rubric:: File format (``format_version`` 2)

A model file is a NumPy ``.npz`` archive (a zip file of ``.npy`` arrays, readable with
``numpy.load(path, allow_pickle=False)``) with these members:

``__numlstm__``
    A ``uint8`` array holding the header: UTF-8 JSON of an object with the keys

    - ``"format"``: always ``"numlstm-model"``;
    - ``"format_version"``: integer, 2 here (version 1 files, which predate GRU and RNN
      layers, read unchanged); bumped on any change that older readers cannot read;
    - ``"numlstm_version"``, ``"numpy_version"``: versions that wrote the file
      (informational);
    - ``"class"``: ``"LSTMRegressor"``, ``"LSTMClassifier"``, ``"LSTM"``, ``"GRU"`` or
      ``"RNN"``;
    - ``"params"``: for the estimators, ``get_params(deep=False)``;
    - ``"attributes"``: for the estimators, their fitted attributes (empty when the
      estimator is not fitted), e.g. ``"classes_"``, ``"loss_curve_"``, ``"network_"``;
    - ``"layer"``: for the layer classes, the layer (see ``$lstm`` below);
    - ``"arrays"``: for every other member, its ``"dtype"`` (NumPy ``dtype.str``),
      ``"shape"`` and ``"sha256"`` (hex digest of its C-ordered bytes).

``a0``, ``a1``, ...
    The arrays referenced from the header (weights, scalers, class labels...). Their
    dtypes never hold Python objects.

Values in ``"params"`` and ``"attributes"`` are JSON ``null``, booleans, numbers,
strings and lists, or objects with exactly one key naming their kind:

- ``{"$float": "nan" | "inf" | "-inf"}``: a non-finite Python float;
- ``{"$scalar": [dtype, value]}``: a NumPy scalar, e.g. ``["float32", 0.5]``; for
  other than numbers (``numpy.str_``, ``numpy.datetime64``...), ``value`` is an
  ``$array`` of shape ``()``;
- ``{"$array": name}``: the member ``name``; ``{"$object_array": name}`` is the same
  array converted to ``dtype=object`` (labels that were Python strings or ints);
- ``{"$tuple": [...]}``, ``{"$dict": {...}}`` (string keys);
- ``{"$dtype": str}``: a NumPy scalar type such as ``numpy.float32`` (``"<f4"``,
  its ``dtype.str``); ``{"$numpy_dtype": str}``: a ``numpy.dtype``;
- ``{"$path": string}``: a :class:`pathlib.Path` (any ``os.PathLike``);
- ``{"$random_state": {"bit_generator": name, "state": ...}}``: a
  ``numpy.random.RandomState`` (``get_state(legacy=False)``);
  ``{"$generator": ...}``: a ``numpy.random.Generator`` (its bit generator's state);
- ``{"$lstm": {...}}``: a recurrent layer: ``cell`` (``"lstm"``, ``"gru"`` or ``"rnn"``;
  absent in version 1, meaning ``"lstm"``), ``input_size``, ``hidden_size``,
  ``num_layers``, ``bidirectional``, ``dropout``, ``dtype``, ``device``, ``training``,
  ``rng`` (a ``$generator``) and ``flat_parameters`` (an ``$array``); for the LSTM also
  ``proj_size`` and ``peephole`` (absent: 0 and false), for the RNN ``nonlinearity``;
- ``{"$network": {...}}``: the estimators' ``network_``: ``lstm`` (the layer, an
  ``$lstm``),
  ``n_outputs``, ``loss``, ``sequence_output``, ``coef_`` and ``intercept_``.

Not saved: gradients, scratch memory, and the optimizer's running state (Adam's moment
estimates, SGD's velocities). A loaded estimator predicts exactly as the saved one, and
``fit`` with ``warm_start=True`` continues exactly as the saved one would (each ``fit``
call starts a new optimizer); ``partial_fit`` continues from the saved weights with a
fresh optimizer.

:func:`save` writes a temporary file in the target's directory, flushes it to disk and
renames it over the target, so an interrupted save leaves the previous file intact.
"""

import hashlib
import json
import math
import os
import pathlib
import re
import warnings

import numpy as np

from .._utils.files import atomic_write
from .._version import __version__
from ..estimators import LSTMClassifier, LSTMRegressor
from ..nn import GRU, LSTM, RNN
from ..nn import LSTMNetwork

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]

#: Version of the file format written by :func:`save`; :func:`load` reads 1 to this.
FORMAT_VERSION = 2

_FORMAT_NAME = "numlstm-model"
_HEADER_MEMBER = "__numlstm__"
_LAYERS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
_CELL_CLASSES = {cls.cell: cls for cls in _LAYERS.values()}
_CLASSES = {"LSTMRegressor": LSTMRegressor, "LSTMClassifier": LSTMClassifier, **_LAYERS}
_BIT_GENERATORS = {name: getattr(np.random, name)
                   for name in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")}
# Fitted state that is not saved: optimizer moments (see the module docstring) and the
# best weights held only while early stopping runs.
_NOT_SAVED = frozenset({"_optimizer", "_best_params"})
_ATTRIBUTE_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9_]*$")
_ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """Raised by :func:`load` for a file that is not a readable numlstm model file.

    The file may be truncated or corrupted, may not be a numlstm model file at all, or
    may have been written in a newer format version than this numlstm reads. A subclass
    of :class:`ValueError`.

    See Also
    --------
    load : Raises it.

    Examples
    --------
    >>> import io
    >>> from numlstm.io import ModelFileError, load
    >>> try:
    ...     load(io.BytesIO(b"not a model"))
    ... except ModelFileError as exc:
    ...     print(exc)
    <BytesIO> is not a numlstm model file: it is not an .npz (zip) archive.
    """


# ---------------------------------------------------------------------- encoding
class _Encoder:
    """Turns Python values into JSON values, collecting arrays on the side."""

    def __init__(self):
        self.arrays = {}

    def array(self, value):
        value = np.asarray(value)
        tag = "$array"
        if value.dtype.hasobject:
            value, tag = self._object_array(value), "$object_array"
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.array(value, order="C")  # keeps 0-d arrays 0-d
        return {tag: name}

    @staticmethod
    def _object_array(value):
        items = value.ravel().tolist()
        for kind in (str, bytes, int):
            if items and all(type(item) is kind for item in items):
                converted = np.array(items).reshape(value.shape)
                if not converted.dtype.hasobject:
                    return converted
        kinds = sorted({type(item).__name__ for item in items})
        raise TypeError(f"an object array holding {kinds} cannot be saved without pickle; "
                        "only arrays of numbers, or of strings/bytes/ints alone, can")

    def value(self, value, where):
        if isinstance(value, np.generic):  # before str and float: np.str_, np.float64
            if value.dtype.hasobject:
                raise TypeError(f"{where}: object scalars cannot be saved")
            if value.dtype.kind in "biuf":
                return {"$scalar": [value.dtype.name, self.value(value.item(), where)]}
            return {"$scalar": [value.dtype.str, self.array(value)]}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if math.isfinite(value):
                return float(value)
            return {"$float": repr(float(value))}
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, list):
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.value(item, f"{where}[{i}]")
                               for i, item in enumerate(value)]}
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise TypeError(f"{where}: only dicts with string keys can be saved")
            return {"$dict": {key: self.value(item, f"{where}[{key!r}]")
                              for key, item in value.items()}}
        if isinstance(value, os.PathLike):
            return {"$path": os.fsdecode(value)}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"$dtype": self._dtype_str(value, where)}
        if isinstance(value, np.dtype):
            return {"$numpy_dtype": self._dtype_str(value, where)}
        if isinstance(value, np.random.RandomState):
            return {"$random_state": self.value(value.get_state(legacy=False), where)}
        if isinstance(value, np.random.Generator):
            return {"$generator": self.value(value.bit_generator.state, where)}
        if type(value) in _LAYERS.values():
            return {"$lstm": self.lstm(value)}
        if type(value) is LSTMNetwork:
            return {"$network": self.network(value)}
        raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, "
                        "which numlstm.save cannot store without pickle")

    @staticmethod
    def _dtype_str(dtype, where):
        dtype = np.dtype(dtype)
        if dtype.hasobject or dtype.names is not None:
            raise TypeError(f"{where}: dtype {dtype} cannot be saved")
        return dtype.str

    def lstm(self, layer):
        spec = {
            "cell": layer.cell,
            "input_size": layer.input_size, "hidden_size": layer.hidden_size,
            "num_layers": layer.num_layers, "bidirectional": layer.bidirectional,
            "dropout": layer.dropout, "dtype": layer.dtype.name, "device": layer.device,
            "training": bool(layer.training),
            "rng": self.value(getattr(layer, "_rng", None), "layer random generator"),
            "flat_parameters": self.array(layer.flat_parameters),
        }
        if layer.cell == "lstm":
            spec.update(proj_size=layer.proj_size, peephole=layer.peephole)
        elif layer.cell == "rnn":
            spec["nonlinearity"] = layer.nonlinearity
        return spec

    def network(self, net):
        return {
            "lstm": self.lstm(net.lstm), "n_outputs": int(net.n_outputs), "loss": net.loss,
            "sequence_output": bool(net.sequence_output),
            "coef_": self.array(net.coef_), "intercept_": self.array(net.intercept_),
        }


def _encode_estimator(est, encoder):
    params = est.get_params(deep=False)
    encoded_params = {name: encoder.value(value, f"parameter {name!r}")
                      for name, value in params.items()}
    attributes = {}
    for name, value in vars(est).items():
        if name in params or name in _NOT_SAVED:
            continue
        try:
            attributes[name] = encoder.value(value, f"attribute {name!r}")
        except TypeError as exc:
            if not name.startswith("_"):
                raise TypeError(f"cannot save {type(est).__name__}: {exc}") from None
            warnings.warn(f"numlstm.save skips {type(est).__name__}.{name}: {exc}",
                          UserWarning, stacklevel=3)
    return {"params": encoded_params, "attributes": attributes}


# ---------------------------------------------------------------------- decoding
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _parameter_count(cell, input_size, hidden_size, num_layers, n_dirs, proj_size, peephole):
    """Weights of a layer with these sizes, in closed form (before allocating any)."""
    G, H = _GATES[cell], hidden_size
    state = proj_size or H

    def per_direction(in_size):
        return G * H * (in_size + state + 2) + (3 * H if peephole else 0) + proj_size * H

    return n_dirs * (per_direction(input_size)
                     + (num_layers - 1) * per_direction(n_dirs * state))


class _Decoder:
    """Turns the JSON values of a header back into Python values."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.used = set()

    def array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise ValueError(f"the header refers to a missing array {name!r}")
        self.used.add(name)
        return self.arrays[name]

    def value(self, value):
        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError(f"unexpected value in the header: {value!r:.80}")
        (tag, body), = value.items()
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad $float {body!r}")
            return float(body)
        if tag == "$scalar":
            dtype, item = body
            item = self.value(item)
            if isinstance(item, np.ndarray):
                return item.reshape(())[()]
            return np.dtype(dtype).type(item)
        if tag == "$array":
            return self.array(body).copy()
        if tag == "$object_array":
            return self.array(body).astype(object)
        if tag == "$tuple":
            return tuple(self.value(item) for item in body)
        if tag == "$dict":
            if not isinstance(body, dict):
                raise ValueError("bad $dict")
            return {key: self.value(item) for key, item in body.items()}
        if tag == "$path":
            if not isinstance(body, str):
                raise ValueError("bad $path")
            return pathlib.Path(body)
        if tag in ("$dtype", "$numpy_dtype"):
            dtype = np.dtype(str(body))
            if dtype.hasobject or dtype.names is not None:
                raise ValueError(f"unsupported {tag} {body!r}")
            return dtype.type if tag == "$dtype" else dtype
        if tag == "$random_state":
            state = self.value(body)
            rs = np.random.RandomState(self._bit_generator(state["bit_generator"]))
            rs.set_state(state)
            return rs
        if tag == "$generator":
            state = self.value(body)
            bit_generator = self._bit_generator(state["bit_generator"])
            bit_generator.state = state
            return np.random.Generator(bit_generator)
        if tag == "$lstm":
            return self.lstm(body)
        if tag == "$network":
            return self.network(body)
        raise ValueError(f"unknown value kind {tag!r} in the header")

    @staticmethod
    def _bit_generator(name):
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unsupported bit generator {name!r}")
        return _BIT_GENERATORS[name]()

    def _into(self, target, name, ref):
        """Copy the array ``ref`` into ``target`` after checking its dtype and shape."""
        if not (isinstance(ref, dict) and set(ref) == {"$array"}):
            raise ValueError(f"{name} must be an $array")
        value = self.array(ref["$array"])
        if value.dtype != target.dtype or value.shape != target.shape:
            raise ValueError(f"{name} has dtype {value.dtype} and shape {value.shape}, "
                             f"expected {target.dtype} and {target.shape}")
        target[...] = value

    def _array_spec(self, ref, name):
        if not (isinstance(ref, dict) and set(ref) == {"$array"}):
            raise ValueError(f"{name} must be an $array")
        self.array(ref["$array"])  # exists
        return self.arrays[ref["$array"]]

    def lstm(self, spec):
        # Check the sizes against the stored weights before allocating anything: a
        # damaged header must not make us reserve gigabytes.
        cell = spec.get("cell", "lstm")
        if cell not in _CELL_CLASSES:
            raise ValueError(f"unknown cell {cell!r}")
        sizes = [spec[key] for key in ("input_size", "hidden_size", "num_layers")]
        proj_size = spec.get("proj_size", 0) if cell == "lstm" else 0
        if not (all(type(size) is int and size > 0 for size in sizes)
                and type(proj_size) is int and proj_size >= 0):
            raise ValueError(f"invalid layer sizes {sizes + [proj_size]}")
        peephole = spec.get("peephole", False) if cell == "lstm" else False
        if type(peephole) is not bool:
            raise ValueError(f"invalid peephole flag {peephole!r}")
        I, H, L = sizes
        D = 2 if spec["bidirectional"] else 1
        n_params = _parameter_count(cell, I, H, L, D, proj_size, peephole)
        stored = self._array_spec(spec["flat_parameters"], "layer flat_parameters")
        if stored.shape != (n_params,):
            raise ValueError(f"layer flat_parameters has shape {stored.shape}, a {cell} "
                             f"layer of these sizes has {n_params} weights")
        device = spec["device"]
        if device == "cuda":
            from ..nn.backend import resolve_device
            if resolve_device("auto") != "cuda":  # trained on a GPU, loaded without one
                device = "cpu"
        rng = self.value(spec["rng"])
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError("layer rng must be a $generator")
        state = None if rng is None else rng.bit_generator.state
        options = {}
        if cell == "lstm":
            options = dict(forget_bias=None, proj_size=proj_size, peephole=peephole)
        elif cell == "rnn":
            options = dict(nonlinearity=spec.get("nonlinearity", "tanh"))
        layer = _CELL_CLASSES[cell](
            I, H, num_layers=L, bidirectional=spec["bidirectional"],
            dropout=spec["dropout"], dtype=np.dtype(spec["dtype"]), random_state=rng,
            device=device, **options)
        if rng is not None:
            rng.bit_generator.state = state  # undo the draws of the initialisation
        self._into(layer.flat_parameters, "layer flat_parameters", spec["flat_parameters"])
        layer.train(spec["training"])
        return layer

    def network(self, spec):
        lstm = self.lstm(spec["lstm"])
        coef = self._array_spec(spec["coef_"], "network coef_")
        if coef.shape != (lstm.output_size, spec["n_outputs"]):
            raise ValueError(f"network coef_ has shape {coef.shape}, expected "
                             f"{(lstm.output_size, spec['n_outputs'])}")
        net = LSTMNetwork(lstm, spec["n_outputs"], loss=spec["loss"],
                          sequence_output=spec["sequence_output"])
        self._into(net.coef_, "network coef_", spec["coef_"])
        self._into(net.intercept_, "network intercept_", spec["intercept_"])
        return net


def _decode_estimator(cls, header, decoder):
    params = {name: decoder.value(value) for name, value in header["params"].items()}
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"parameters {unknown} are unknown to {cls.__name__} in numlstm "
                         f"{__version__}; the file was written by numlstm "
                         f"{header.get('numlstm_version')!r}")
    est = cls(**params)
    for name, value in header["attributes"].items():
        if (not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name)
                or name.startswith("__") or name in known or hasattr(cls, name)):
            raise ValueError(f"invalid attribute name {name!r}")
        setattr(est, name, decoder.value(value))
    return est


# ------------------------------------------------------------------------ saving
def _sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).reshape(-1)).hexdigest()


def _atomic_write(path, members, compress):
    atomic_write(path, lambda f: (np.savez_compressed if compress else np.savez)(f, **members))


def save(obj, path, *, compress=False):
    """Save an estimator or an LSTM layer to a file that holds no pickled code.

    Parameters
    ----------
    obj : LSTMRegressor, LSTMClassifier or LSTM
        The object to save, fitted or not. Subclasses are refused (their code could
        not be rebuilt from data): pickle them instead.
    path : str or os.PathLike
        File to write; any name works (``.npz`` is customary, as the file is a NumPy
        ``.npz`` archive). An existing file is replaced atomically: the new contents
        are written to a temporary file in the same directory, flushed to disk, then
        renamed over ``path``, so a crash or an error during :func:`save` leaves the
        previous file as it was.
    compress : bool, default=False
        Deflate the arrays (smaller files, slower saving and loading).

    Raises
    ------
    TypeError
        If ``obj`` is of another type, or holds a parameter or fitted attribute that
        cannot be stored without pickle (e.g. ``random_state`` set to an unsupported
        object, or class labels mixing types).

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    The format is described in :mod:`numlstm.io`. The optimizer's running state is not
    saved: a loaded estimator predicts exactly like the saved one, and further
    ``partial_fit`` calls start a fresh optimizer from its weights. Plain :mod:`pickle`
    (and :mod:`joblib`) keep working too, for trusted files.

    Examples
    --------
    >>> import numpy as np
    >>> import numlstm
    >>> from numlstm.io import load, save
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8, 2))
    >>> y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    >>> clf = numlstm.LSTMClassifier(hidden_size=4, max_iter=3, random_state=0).fit(X, y)
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(clf, path)
    >>> clf2 = load(path)
    >>> type(clf2).__name__, clf2.classes_
    ('LSTMClassifier', array(['down', 'up'], dtype='<U4'))
    >>> bool(np.array_equal(clf2.predict_proba(X), clf.predict_proba(X)))
    True
    """
    cls = type(obj)
    name = next((key for key, value in _CLASSES.items() if value is cls), None)
    if name is None:
        raise TypeError(f"numlstm.save stores LSTMRegressor, LSTMClassifier, LSTM, GRU and "
                        f"RNN objects, got {cls.__module__}.{cls.__qualname__}; use pickle "
                        "for other objects (subclasses included)")
    encoder = _Encoder()
    header = {"format": _FORMAT_NAME, "format_version": FORMAT_VERSION,
              "numlstm_version": __version__, "numpy_version": np.__version__,
              "class": name}
    if name in _LAYERS:
        header["layer"] = encoder.lstm(obj)
    else:
        header.update(_encode_estimator(obj, encoder))
    header["arrays"] = {key: {"dtype": array.dtype.str, "shape": list(array.shape),
                              "sha256": _sha256(array)}
                        for key, array in encoder.arrays.items()}
    text = json.dumps(header, allow_nan=False, sort_keys=True, separators=(",", ":"))
    members = dict(encoder.arrays)
    members[_HEADER_MEMBER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, members, compress)


# ----------------------------------------------------------------------- loading
def _describe(source):
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return f"<{type(source).__name__}>"


def _open_source(source):
    """Return (binary file object, whether we opened it). OS errors propagate as such."""
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb"), True
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(f"expected a path or a seekable binary file object, got "
                        f"{type(source).__name__}")
    return source, False


def _open_archive(f, what):
    """Check the zip signature and open the archive (without pickle support)."""
    start = f.tell()
    magic = f.read(len(_ZIP_MAGIC))
    f.seek(start)
    if magic != _ZIP_MAGIC:
        raise ModelFileError(f"{what} is not a numlstm model file: it is not an .npz "
                             "(zip) archive.")
    return np.load(f, allow_pickle=False)


def _read_header(archive, what):
    if _HEADER_MEMBER not in archive.files:
        raise ModelFileError(f"{what} is an .npz archive but not a numlstm model file "
                             f"(it has no {_HEADER_MEMBER!r} header).")
    raw = archive[_HEADER_MEMBER]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("the header is not a 1-D uint8 array")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
        raise ModelFileError(f"{what} is not a numlstm model file (format "
                             f"{header.get('format') if isinstance(header, dict) else None!r}).")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{what} was written by numlstm {header.get('numlstm_version')!r} in file format "
            f"version {version}; this numlstm ({__version__}) reads versions up to "
            f"{FORMAT_VERSION}. Upgrade numlstm to load it.")
    return header


def _guarded(what, func):
    """Run ``func``, turning any failure on a damaged file into a ModelFileError."""
    try:
        return func()
    except ModelFileError:
        raise
    except (Exception, MemoryError) as exc:
        raise ModelFileError(
            f"{what} is truncated or corrupted, or is not a valid numlstm model file "
            f"({type(exc).__name__}: {exc})") from exc


def read_header(source):
    """Read the JSON header of a model file without building the model.

    Parameters
    ----------
    source : str, os.PathLike or seekable binary file object
        A file written by :func:`save`.

    Returns
    -------
    header : dict
        The header described in :mod:`numlstm.io`: ``"class"``, ``"format_version"``,
        ``"numlstm_version"``, ``"params"``, ... (values still in their JSON encoding).

    Raises
    ------
    ModelFileError
        If the file is not a readable numlstm model file, or is of a newer format
        version.

    See Also
    --------
    load : Read the whole model.

    Examples
    --------
    >>> import os, tempfile
    >>> from numlstm import LSTMRegressor
    >>> from numlstm.io import read_header, save
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(LSTMRegressor(hidden_size=16), path)
    >>> header = read_header(path)
    >>> header["class"], header["format_version"], header["params"]["hidden_size"]
    ('LSTMRegressor', 1, 16)
    """
    what = _describe(source)

    f, owned = _open_source(source)
    try:
        return _guarded(what, lambda: _read_header_from(f, what))
    finally:
        if owned:
            f.close()


def _read_header_from(f, what):
    with _open_archive(f, what) as archive:
        return _read_header(archive, what)


def load(source):
    """Load an estimator or LSTM layer saved by :func:`save`.

    The file is read with ``numpy.load(..., allow_pickle=False)`` and the object is
    rebuilt from a fixed list of classes, so loading an untrusted file cannot run code.
    Every array is checked against the SHA-256 digest, dtype and shape recorded in the
    header.

    Parameters
    ----------
    source : str, os.PathLike or seekable binary file object
        A file written by :func:`save` (any numlstm version writing format versions up
        to :data:`FORMAT_VERSION`).

    Returns
    -------
    obj : LSTMRegressor, LSTMClassifier or LSTM
        The saved object. Its predictions are bit-identical to the saved object's on
        the same machine. A model saved with ``device="cuda"`` loads onto the CPU when
        no GPU is usable (its ``device`` parameter is kept).

    Raises
    ------
    ModelFileError
        If the file is truncated or corrupted, is not a numlstm model file, or was
        written in a newer format version. A subclass of :class:`ValueError`.
    OSError
        If ``source`` is a path that cannot be opened (``FileNotFoundError``,
        ``PermissionError``, ...).

    See Also
    --------
    save : Write a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from numlstm import LSTM
    >>> from numlstm.io import load, save
    >>> layer = LSTM(3, 4, random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.npz")
    >>> save(layer, path)
    >>> layer2 = load(path)
    >>> layer2
    LSTM(3, 4, dtype=float32, device='cpu')
    >>> bool(np.array_equal(layer2.flat_parameters, layer.flat_parameters))
    True
    """
    what = _describe(source)

    f, owned = _open_source(source)
    try:
        return _guarded(what, lambda: _load_from(f, what))
    finally:
        if owned:
            f.close()


def _load_from(f, what):
    with _open_archive(f, what) as archive:
        header = _read_header(archive, what)
        manifest = header["arrays"]
        names = set(archive.files) - {_HEADER_MEMBER}
        if names != set(manifest):
            raise ValueError(f"the archive holds arrays {sorted(names)}, the header "
                             f"lists {sorted(manifest)}")
        arrays = {}
        for name in sorted(names):
            array = archive[name]
            spec = manifest[name]
            if array.dtype.str != spec["dtype"] or list(array.shape) != list(spec["shape"]):
                raise ValueError(f"array {name!r} has dtype {array.dtype.str} and shape "
                                 f"{array.shape}, the header says {spec['dtype']} and "
                                 f"{tuple(spec['shape'])}")
            if _sha256(array) != spec["sha256"]:
                raise ValueError(f"array {name!r} does not match its checksum")
            arrays[name] = array
    cls = _CLASSES.get(header.get("class"))
    if cls is None:
        raise ValueError(f"unknown class {header.get('class')!r}")
    decoder = _Decoder(arrays)
    if cls in _LAYERS.values():
        obj = decoder.lstm(header["layer"])
        if type(obj) is not cls:
            raise ValueError(f"class {header['class']!r} holds a {obj.cell!r} layer")
    else:
        obj = _decode_estimator(cls, header, decoder)
    if decoder.used != set(arrays):
        raise ValueError(f"arrays {sorted(set(arrays) - decoder.used)} are not used")
    return obj
