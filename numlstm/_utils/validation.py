"""Input validation and conversion for the estimators.

Validation happens once, at the boundary (``fit``, ``partial_fit``,
``predict``...); the numerical code behind it trusts its inputs. Every error
names the argument at fault (``X``, ``y``, ``X[3]``...).

Accepted sequence inputs
------------------------
* a 3-D array-like of shape (n_samples, n_timesteps, n_features);
* a 2-D array-like of shape (n_samples, n_timesteps): univariate series;
* a list of 2-D arrays (n_timesteps_i, n_features) or of 1-D arrays
  (univariate) whose lengths differ: they are zero-padded at the end into a
  3-D array and their lengths returned, so the LSTM ignores the padding.
"""

import re
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array

__all__ = [
    "check_sequences",
    "check_regression_targets",
    "check_classification_labels",
    "check_n_features",
    "valid_steps_mask",
]


def _named(name, func, *args, **kwargs):
    """Call ``func``; re-raise its ValueError/TypeError with ``name`` in the message."""
    try:
        return func(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if re.search(rf"(?<![\w\[]){re.escape(name)}(?![\w\]])", msg):
            raise
        raise type(exc)(f"{name}: {msg}") from exc


def _is_ragged_list(X):
    """Whether ``X`` is a list/tuple of sequences that do not share one shape, or a 1-D
    object array (or pandas Series) of sequences, which is how NumPy and pandas hold
    sequences of different lengths."""
    if (getattr(X, "dtype", None) == object and getattr(X, "ndim", 0) == 1 and len(X)
            and all(np.ndim(item) >= 1 for item in X)):
        return True
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    shapes = set()
    for item in X:
        try:
            shapes.add(np.shape(item))
        except ValueError:  # an item that is itself ragged
            return True
        if len(shapes) > 1:
            return True
    return False


def _as_array(X, name, dtype, ensure_all_finite=True):
    if X is None:
        raise ValueError(
            f"{name} is None; expected an array-like of sequences "
            "(n_samples, n_timesteps[, n_features])."
        )
    return _named(
        name, check_array, X, dtype=dtype, ensure_2d=False, allow_nd=True,
        ensure_all_finite=ensure_all_finite, ensure_min_samples=1, ensure_min_features=1,
        input_name=name,
    )


def _pad_ragged(items, name, dtype):
    """Zero-pad a list of (T_i, F) / (T_i,) sequences into (n, max T_i, F)."""
    seqs = []
    for i, item in enumerate(items):
        item_name = f"{name}[{i}]"
        if sp.issparse(item):
            raise TypeError(f"{item_name} is sparse; dense sequences are required.")
        shape = _named(item_name, np.shape, item)  # raises for an item itself ragged
        if len(shape) >= 1 and shape[0] == 0:
            raise ValueError(
                f"{item_name} has 0 timesteps; every sequence needs at least 1 "
                "(lengths must be in [1, n_timesteps])."
            )
        arr = _as_array(item, item_name, dtype)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(
                f"{item_name} must be a 1-D (n_timesteps,) or 2-D (n_timesteps, n_features) "
                f"sequence; got {arr.ndim}-D with shape {arr.shape}."
            )
        seqs.append(arr)
    n_features = seqs[0].shape[1]
    for i, arr in enumerate(seqs):
        if arr.shape[1] != n_features:
            raise ValueError(
                f"{name}[{i}] has {arr.shape[1]} features, but {name}[0] has {n_features}; "
                "every sequence needs the same number of features."
            )
    lengths = np.array([arr.shape[0] for arr in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), int(lengths.max()), n_features), dtype=seqs[0].dtype)
    for i, arr in enumerate(seqs):
        out[i, : arr.shape[0]] = arr
    return out, lengths


def check_sequences(X, *, dtype=np.float64, name="X"):
    """Validate sequence input and convert it to a 3-D array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_timesteps, n_features) or \
            (n_samples, n_timesteps), or list of array-like
        The sequences. A 2-D input holds univariate series. A list of
        sequences of different lengths — each of shape
        (n_timesteps_i, n_features) or (n_timesteps_i,) — is zero-padded.
    dtype : numpy dtype, default=np.float64
        The floating-point dtype of the result.
    name : str, default="X"
        Name of the argument, used in error messages.

    Returns
    -------
    X3 : ndarray of shape (n_samples, n_timesteps, n_features)
        C-contiguous array of ``dtype``.
    lengths : ndarray of shape (n_samples,) of int64, or None
        Valid length of each sequence when ``X`` was a ragged list, else
        None (every sequence uses all timesteps).

    Raises
    ------
    ValueError
        Wrong rank, empty input, a sequence of length 0, NaN or infinity,
        complex values, inconsistent feature counts across sequences.
    TypeError
        Non-numeric values, sparse matrices.
    """
    if _is_ragged_list(X):
        X3, lengths = _pad_ragged(X, name, dtype)
        return np.ascontiguousarray(X3), lengths
    arr = _as_array(X, name, dtype)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D (n_samples, n_timesteps, n_features), or 2-D "
            f"(n_samples, n_timesteps) for univariate series; got a {arr.ndim}-D array "
            f"of shape {arr.shape}. Reshape your data, e.g. {name}.reshape(1, -1) for one "
            "univariate series."
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 timesteps (shape={arr.shape}); at least 1 is required.")
    if arr.shape[2] == 0:
        raise ValueError(
            f"{name}: Found array with 0 feature(s) (shape={arr.shape}) while a minimum of "
            "1 is required."
        )
    return np.ascontiguousarray(arr), None


def valid_steps_mask(n_samples, n_timesteps, lengths):
    """Boolean mask of the valid (non-padded) timesteps.

    Parameters
    ----------
    n_samples, n_timesteps : int
        Shape of the batch.
    lengths : ndarray of shape (n_samples,) or None
        Valid lengths; None means every step is valid.

    Returns
    -------
    mask : ndarray of shape (n_samples, n_timesteps) of bool
    """
    if lengths is None:
        return np.ones((n_samples, n_timesteps), dtype=bool)
    return np.arange(n_timesteps)[None, :] < np.asarray(lengths)[:, None]


def _check_n_samples(n_X, n_y):
    if n_X != n_y:
        raise ValueError(
            "X and y have inconsistent numbers of samples: "
            f"X has {n_X} sample(s), y has {n_y}."
        )


def _missing_y(estimator_name):
    return ValueError(
        f"{estimator_name} requires y to be passed, but the target y is None."
    )


def check_regression_targets(y, n_samples, *, n_timesteps, lengths=None, dtype=np.float64,
                             estimator_name="estimator"):
    """Validate regression targets.

    Parameters
    ----------
    y : array-like of shape (n_samples,), (n_samples, n_outputs) or \
            (n_samples, n_timesteps, n_outputs), or list of array-like
        Targets. A 3-D ``y`` (or a list of per-sequence target arrays, for
        a ragged ``X``) asks for sequence-to-sequence regression: one target
        vector per timestep.
    n_samples : int
        Number of sequences in ``X``.
    n_timesteps : int
        Number of timesteps of the (padded) ``X``.
    lengths : ndarray of shape (n_samples,) or None, default=None
        Valid lengths of ``X``'s sequences.
    dtype : numpy dtype, default=np.float64
        Floating-point dtype of the result.
    estimator_name : str, default="estimator"
        Used in the message when ``y`` is None.

    Returns
    -------
    y : ndarray
        Float array of ndim 1, 2 or 3. A 3-D result has shape
        (n_samples, n_timesteps, n_outputs), zero at padded steps.

    Raises
    ------
    ValueError
        ``y`` missing, empty, NaN/infinite, of the wrong rank, or whose
        sample or timestep count does not match ``X``.
    TypeError
        Non-numeric values.
    """
    if y is None:
        raise _missing_y(estimator_name)
    if _is_ragged_list(y):
        y, y_lengths = _pad_ragged(y, "y", dtype)
        _check_n_samples(n_samples, y.shape[0])
        x_lengths = lengths if lengths is not None else np.full(n_samples, n_timesteps)
        if not np.array_equal(y_lengths, x_lengths):
            bad = int(np.flatnonzero(y_lengths != x_lengths)[0])
            raise ValueError(
                f"y[{bad}] has {y_lengths[bad]} timesteps but X[{bad}] has "
                f"{x_lengths[bad]}; sequence targets need one row per timestep of X."
            )
        if y.shape[1] < n_timesteps:
            y = np.concatenate(
                [y, np.zeros((n_samples, n_timesteps - y.shape[1], y.shape[2]), y.dtype)], axis=1
            )
        return np.ascontiguousarray(y)
    y = _as_array(y, "y", dtype)
    if y.ndim not in (1, 2, 3):
        raise ValueError(
            f"y must be 1-D (n_samples,), 2-D (n_samples, n_outputs) or 3-D "
            f"(n_samples, n_timesteps, n_outputs); got a {y.ndim}-D array of shape {y.shape}."
        )
    _check_n_samples(n_samples, y.shape[0])
    if y.ndim == 3:
        if y.shape[1] != n_timesteps:
            raise ValueError(
                f"y has {y.shape[1]} timesteps but X has {n_timesteps}; a 3-D y "
                "(n_samples, n_timesteps, n_outputs) needs one target per timestep of X."
            )
        if y.shape[2] == 0:
            raise ValueError(f"y has 0 outputs (shape={y.shape}).")
        if lengths is not None:
            y = y.copy()
            y[~valid_steps_mask(n_samples, n_timesteps, lengths)] = 0
    return np.ascontiguousarray(y)


def check_classification_labels(y, n_samples, *, estimator_name="estimator"):
    """Validate classification labels.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels of any type (ints, strings...). A column vector is
        accepted with a ``DataConversionWarning``.
    n_samples : int
        Number of sequences in ``X``.
    estimator_name : str, default="estimator"
        Used in the message when ``y`` is None.

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        ``y`` missing, empty, 2-D with several columns, with NaN/infinite
        values, continuous (``"Unknown label type"``) or with a sample
        count different from ``X``'s.
    """
    if y is None:
        raise _missing_y(estimator_name)
    if sp.issparse(y):
        raise TypeError("y is sparse; a dense 1-D array of labels is required.")
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change "
            "the shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning, stacklevel=3,
        )
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        raise ValueError(
            f"y should be a 1d array of class labels, got an array of shape {y_arr.shape} "
            "instead (multi-output classification is not supported)."
        )
    if y_arr.shape[0] == 0:
        raise ValueError("y is empty: found 0 labels while a minimum of 1 is required.")
    _check_n_samples(n_samples, y_arr.shape[0])
    if y_arr.dtype.kind in "fc" and not np.isfinite(y_arr).all():
        raise ValueError("Input y contains NaN or infinity.")
    if y_arr.dtype.kind == "O":
        missing = [i for i, label in enumerate(y_arr) if _is_missing(label)]
        if missing:
            raise ValueError(
                f"y contains {len(missing)} missing label(s) (None, NaN or pandas.NA), the "
                f"first at index {missing[0]}: every sample needs a class label.")
    _named("y", check_classification_targets, y_arr)
    return y_arr


def _is_missing(label):
    """Whether a label of an object array marks a missing value: None, a float NaN, or
    pandas' NA and NaT (recognised by type name: pandas is not a dependency)."""
    if label is None:
        return True
    if isinstance(label, (float, np.floating)):
        return bool(np.isnan(label))
    return type(label).__name__ in ("NAType", "NaTType")


def check_n_features(n_features, n_features_in, estimator_name, name="X"):
    """Raise if the feature count differs from the one seen in ``fit``.

    Parameters
    ----------
    n_features : int
        Features (channels) of the new input.
    n_features_in : int
        Features seen during ``fit``.
    estimator_name : str
        Name of the estimator, for the message.
    name : str, default="X"
        Name of the argument.
    """
    if n_features != n_features_in:
        raise ValueError(
            f"{name} has {n_features} features, but {estimator_name} is expecting "
            f"{n_features_in} features as input."
        )
