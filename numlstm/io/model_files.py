"""Save and load models in a versioned file format that holds no code.

:func:`save` writes a fitted (or unfitted) :class:`~numlstm.LSTMRegressor`,
:class:`~numlstm.LSTMClassifier`, or a :class:`~numlstm.LSTM`, :class:`~numlstm.GRU` or
:class:`~numlstm.RNN` layer to one file; :func:`load`
reads it back. Unlike :mod:`pickle`, loading a file can never run code: the file holds
only numeric and string arrays and a JSON header, and :func:`load` reads it with
``numpy.load(..., allow_pickle=False)`` and rebuilds the object from a fixed list of
known classes. Predictions of a loaded model are bit-identical to the saved one's.

.. rubric:: File format (``format_version`` 6)

A model file is a NumPy ``.npz`` archive (a zip file of ``.npy`` arrays, readable with
``numpy.load(path, allow_pickle=False)``) with these members:

``__numlstm__``
    A ``uint8`` array holding the header: UTF-8 JSON of an object with the keys

    - ``"format"``: always ``"numlstm-model"``;
    - ``"format_version"``: integer, 6 here (files of versions 1, which predate GRU and
      RNN layers, 2, which predate the network's ``readout``, 3, which predate
      ``input_dropout``, 4, which predate ``input_scaling``, and 5, which predate
      ``output_dropout``, read unchanged: an estimator of a file before version 4 gets
      ``input_dropout=0.0``, one before version 5 ``input_scaling="channel"``, one
      before version 6 ``output_dropout=0.0``, what it was trained with); bumped on any
      change that older readers cannot read;
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
  ``num_layers``, ``bidirectional``, ``dropout``, ``input_dropout`` (absent before
  version 4, meaning 0), ``dtype``, ``device``, ``training``,
  ``rng`` (a ``$generator``) and ``flat_parameters`` (an ``$array``); for the LSTM also
  ``proj_size`` and ``peephole`` (absent: 0 and false), for the RNN ``nonlinearity``;
- ``{"$network": {...}}``: the estimators' ``network_``: ``lstm`` (the layer, an
  ``$lstm``),
  ``n_outputs``, ``loss``, ``sequence_output``, ``readout`` (``"last"``, ``"mean"``,
  ``"max"`` or ``"mean_max"``; absent before version 3, meaning ``"last"``),
  ``output_dropout`` (absent before version 6, meaning 0), ``coef_`` and ``intercept_``.

Not saved: gradients, scratch memory, and the optimizer's running state (Adam's moment
estimates, SGD's velocities). A loaded estimator predicts exactly as the saved one, and
``fit`` with ``warm_start=True`` continues exactly as the saved one would (each ``fit``
call starts a new optimizer); ``partial_fit`` continues from the saved weights with a
fresh optimizer.

:func:`save` writes a temporary file in the target's directory, flushes it to disk and
renames it over the target, so an interrupted save leaves the previous file intact.
"""

import re
import warnings

import numpy as np

from .._utils.array_container import (ModelFileError, describe, guarded, open_archive,
                                      open_source, read_arrays, sha256, write_container)
from .._utils.array_container import read_header as _read_container_header
from .._version import __version__
from ..estimators import LSTMClassifier, LSTMRegressor
from ..training.network_codec import LAYERS as _LAYERS
from ..training.network_codec import NetworkDecoder, NetworkEncoder

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]

#: Version of the file format written by :func:`save`; :func:`load` reads 1 to this.
FORMAT_VERSION = 6

_FORMAT_NAME = "numlstm-model"
_CLASSES = {"LSTMRegressor": LSTMRegressor, "LSTMClassifier": LSTMClassifier, **_LAYERS}
# Fitted state that is not saved: optimizer moments (see the module docstring) and the
# best weights held only while early stopping runs.
_NOT_SAVED = frozenset({"_optimizer", "_best_params"})
_ATTRIBUTE_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9_]*$")
#: The digest the header lists for each array (kept under this name for the tests).
_sha256 = sha256


# ---------------------------------------------------------------------- encoding
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
def _decode_estimator(cls, header, decoder):
    params = {name: decoder.value(value) for name, value in header["params"].items()}
    # A parameter missing from the file was added after it was written: the model was
    # trained without it, i.e. as the value that reproduces the old behaviour (several
    # of them default to "auto" now).
    params = cls._with_parameters_added_later(params)
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
    encoder = NetworkEncoder()
    header = {"format": _FORMAT_NAME, "format_version": FORMAT_VERSION,
              "numlstm_version": __version__, "numpy_version": np.__version__,
              "class": name}
    if name in _LAYERS:
        header["layer"] = encoder.lstm(obj)
    else:
        header.update(_encode_estimator(obj, encoder))
    write_container(path, header, encoder.arrays, compress=compress)


# ----------------------------------------------------------------------- loading
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
    >>> header["class"], header["params"]["hidden_size"]
    ('LSTMRegressor', 16)
    >>> header["format_version"] == FORMAT_VERSION
    True
    """
    what = describe(source)

    f, owned = open_source(source)
    try:
        return guarded(what, lambda: _read_header_from(f, what))
    finally:
        if owned:
            f.close()


def _read_header_from(f, what):
    with open_archive(f, what) as archive:
        return _checked_header(archive, what)


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
    what = describe(source)

    f, owned = open_source(source)
    try:
        return guarded(what, lambda: _load_from(f, what))
    finally:
        if owned:
            f.close()


def _checked_header(archive, what):
    return _read_container_header(archive, what, format_name=_FORMAT_NAME,
                                  max_version=FORMAT_VERSION, version_of=__version__)


def _load_from(f, what):
    with open_archive(f, what) as archive:
        header = _checked_header(archive, what)
        arrays = read_arrays(archive, header)
    cls = _CLASSES.get(header.get("class"))
    if cls is None:
        raise ValueError(f"unknown class {header.get('class')!r}")
    decoder = NetworkDecoder(arrays)
    if cls in _LAYERS.values():
        obj = decoder.lstm(header["layer"])
        if type(obj) is not cls:
            raise ValueError(f"class {header['class']!r} holds a {obj.cell!r} layer")
    else:
        obj = _decode_estimator(cls, header, decoder)
    decoder.check_all_used()
    return obj
