"""Files of arrays and a JSON header that hold no code: the container under model files
and training checkpoints.

A container is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) with one ``uint8``
member, the header, holding UTF-8 JSON. The header names the file's kind
(``"format"``) and its ``"format_version"``, and lists every other member under
``"arrays"`` with its dtype, shape and SHA-256 digest. Reading uses
``numpy.load(..., allow_pickle=False)`` and checks every array against the list, so a
damaged file is refused and no file can run code.

:class:`ValueEncoder` and :class:`ValueDecoder` turn Python values (numbers, strings,
lists, dicts, arrays, NumPy scalars and dtypes, paths, random generators) into JSON and
back, collecting the arrays on the side; the layers above add their own kinds (recurrent
layers, networks, optimizers) by overriding :meth:`ValueEncoder.encode_other` and
:meth:`ValueDecoder.decode_other`. The value kinds are described in :mod:`numlstm.io`.
"""

import hashlib
import json
import math
import os
import pathlib

import numpy as np

from .files import atomic_write

__all__ = ["HEADER_MEMBER", "ModelFileError", "ValueDecoder", "ValueEncoder", "describe",
           "guarded", "open_archive", "open_source", "read_arrays", "read_header", "sha256",
           "write_container"]

HEADER_MEMBER = "__numlstm__"
ZIP_MAGIC = b"PK\x03\x04"
_BIT_GENERATORS = {name: getattr(np.random, name)
                   for name in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")}


class ModelFileError(ValueError):
    """Raised for a file that is not a readable numlstm model file or checkpoint.

    The file may be truncated or corrupted, may not be a numlstm file at all, or
    may have been written in a newer format version than this numlstm reads. A subclass
    of :class:`ValueError`.

    See Also
    --------
    numlstm.io.load : Raises it.

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
class ValueEncoder:
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
            # Python's own numbers hold these exactly; a long double's item() is still a
            # long double, so it is stored as an array, like the other kinds.
            if value.dtype.kind in "biuf" and value.dtype.itemsize <= 8:
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
        encoded = self.encode_other(value, where)
        if encoded is not None:
            return encoded
        raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, "
                        "which numlstm cannot store without pickle")

    def encode_other(self, value, where):
        """The JSON value of a kind the subclass knows, or None (the value is refused)."""
        return None

    @staticmethod
    def _dtype_str(dtype, where):
        dtype = np.dtype(dtype)
        if dtype.hasobject or dtype.names is not None:
            raise TypeError(f"{where}: dtype {dtype} cannot be saved")
        return dtype.str


# ---------------------------------------------------------------------- decoding
class ValueDecoder:
    """Turns the JSON values of a header back into Python values.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The archive's members, already checked against the header's list.
    """

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
        return self.decode_other(tag, body)

    def decode_other(self, tag, body):
        """The value of a kind the subclass knows; raises ValueError for others."""
        raise ValueError(f"unknown value kind {tag!r} in the header")

    @staticmethod
    def _bit_generator(name):
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unsupported bit generator {name!r}")
        return _BIT_GENERATORS[name]()

    def check_all_used(self):
        """Raise ValueError when the header left some array unreferenced."""
        if self.used != set(self.arrays):
            raise ValueError(f"arrays {sorted(set(self.arrays) - self.used)} are not used")


# ------------------------------------------------------------------------ writing
def sha256(array):
    """Hex SHA-256 digest of an array's C-ordered bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).reshape(-1)).hexdigest()


def write_container(path, header, arrays, *, compress=False):
    """Write ``header`` (a JSON-able dict) and ``arrays`` to ``path`` atomically.

    The header gets the ``"arrays"`` list (dtype, shape, SHA-256 of each array). The file
    is written through :func:`numlstm._utils.files.atomic_write`: a temporary file beside
    ``path``, flushed to disk, renamed over ``path``; a crash leaves the old file.
    """
    header = dict(header)
    header["arrays"] = {key: {"dtype": array.dtype.str, "shape": list(array.shape),
                              "sha256": sha256(array)}
                        for key, array in arrays.items()}
    text = json.dumps(header, allow_nan=False, sort_keys=True, separators=(",", ":"))
    members = dict(arrays)
    members[HEADER_MEMBER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    save = np.savez_compressed if compress else np.savez
    atomic_write(path, lambda f: save(f, **members))


# ------------------------------------------------------------------------ reading
def describe(source):
    """How messages name a file: its path, or the type of a file object."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return f"<{type(source).__name__}>"


def open_source(source):
    """Return (binary file object, whether we opened it). OS errors propagate as such."""
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb"), True
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(f"expected a path or a seekable binary file object, got "
                        f"{type(source).__name__}")
    return source, False


def open_archive(f, what, kind="model file"):
    """Check the zip signature and open the archive (without pickle support)."""
    start = f.tell()
    magic = f.read(len(ZIP_MAGIC))
    f.seek(start)
    if magic != ZIP_MAGIC:
        raise ModelFileError(f"{what} is not a numlstm {kind}: it is not an .npz "
                             "(zip) archive.")
    return np.load(f, allow_pickle=False)


def read_header(archive, what, *, format_name, max_version, version_of, kind="model file"):
    """The header of an open archive, checked for its format name and version.

    ``version_of`` is the numlstm version that the format's newest version would need.
    """
    if HEADER_MEMBER not in archive.files:
        raise ModelFileError(f"{what} is an .npz archive but not a numlstm {kind} "
                             f"(it has no {HEADER_MEMBER!r} header).")
    _check_member_size(archive, HEADER_MEMBER, 0, _MAX_HEADER_BYTES, "the header")
    raw = archive[HEADER_MEMBER]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("the header is not a 1-D uint8 array")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != format_name:
        raise ModelFileError(f"{what} is not a numlstm {kind} (format "
                             f"{header.get('format') if isinstance(header, dict) else None!r}).")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"invalid format_version {version!r}")
    if version > max_version:
        raise ModelFileError(
            f"{what} was written by numlstm {header.get('numlstm_version')!r} in file format "
            f"version {version}; this numlstm ({version_of}) reads versions up to "
            f"{max_version}. Upgrade numlstm to load it.")
    return header


#: Bytes that an ``.npy`` member may hold beyond its array's values: the format's own
#: header (up to 64 KiB in the versions numpy writes for such arrays).
_NPY_HEADER_BYTES = 65536 + 16
#: Largest JSON header accepted, in bytes once inflated: far above any model's.
_MAX_HEADER_BYTES = 64 * 2**20


def _check_member_size(archive, member, low, high, what):
    """Refuse a member whose inflated size (the zip directory's, which bounds what
    inflating it yields) lies outside ``[low, high]`` bytes, before inflating it: a
    member of a few megabytes can inflate to gigabytes."""
    size = archive.zip.getinfo(member + ".npy").file_size
    if not low <= size <= high:
        raise ValueError(f"{what} inflates to {size} bytes, where {low} to {high} were "
                         "expected")


def read_arrays(archive, header):
    """Every array member, checked against the header's list (dtype, shape, digest)."""
    manifest = header["arrays"]
    if not isinstance(manifest, dict):
        raise ValueError("the header's array list is not an object")
    names = set(archive.files) - {HEADER_MEMBER}
    if names != set(manifest):
        raise ValueError(f"the archive holds arrays {sorted(names)}, the header "
                         f"lists {sorted(manifest)}")
    arrays = {}
    for name in sorted(names):
        spec = manifest[name]
        nbytes = np.dtype(spec["dtype"]).itemsize * math.prod(int(n) for n in spec["shape"])
        _check_member_size(archive, name, nbytes, nbytes + _NPY_HEADER_BYTES,
                           f"array {name!r} ({spec['dtype']}, {tuple(spec['shape'])})")
        array = archive[name]
        if array.dtype.str != spec["dtype"] or list(array.shape) != list(spec["shape"]):
            raise ValueError(f"array {name!r} has dtype {array.dtype.str} and shape "
                             f"{array.shape}, the header says {spec['dtype']} and "
                             f"{tuple(spec['shape'])}")
        if sha256(array) != spec["sha256"]:
            raise ValueError(f"array {name!r} does not match its checksum")
        arrays[name] = array
    return arrays


def guarded(what, func, kind="model file"):
    """Run ``func``, turning any failure on a damaged file into a ModelFileError."""
    try:
        return func()
    except ModelFileError:
        raise
    except (Exception, MemoryError) as exc:
        raise ModelFileError(
            f"{what} is truncated or corrupted, or is not a valid numlstm {kind} "
            f"({type(exc).__name__}: {exc})") from exc
