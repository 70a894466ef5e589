"""Scale out with Dask: blocked prediction over ``dask.array`` and distributed search.

Dask is an optional dependency (``pip install numlstm[dask]``, i.e. ``dask[array]`` and
``distributed``); it is imported only when :func:`predict_dask` is called.

.. rubric:: Predicting over a large array

:func:`predict_dask` maps an estimator's ``predict`` (or ``predict_proba``, ...) over
the blocks of a ``dask.array`` of sequences, each block a range of whole sequences::

    import dask.array as da
    from numlstm.dask import predict_dask

    X = da.from_zarr("sequences.zarr")            # (n_samples, n_timesteps, n_features)
    y_pred = predict_dask(clf, X, chunk_size=10_000)   # lazy dask array
    y_pred.to_zarr("predictions.zarr")            # or .compute()

.. rubric:: Hyper-parameter search on a cluster

The estimators are ordinary scikit-learn estimators that pickle small (their
parameters, plus the weights once fitted), so :class:`~sklearn.model_selection.GridSearchCV`
and :func:`~sklearn.model_selection.cross_validate` run their fits on a Dask cluster
through joblib's ``"dask"`` backend::

    import joblib
    from dask.distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV
    from numlstm import LSTMClassifier

    cluster = LocalCluster(n_workers=4, threads_per_worker=1,
                           env={"NUMBA_NUM_THREADS": "2"})
    client = Client(cluster)            # or Client("tcp://scheduler-host:8786")

    search = GridSearchCV(LSTMClassifier(random_state=0),
                          {"hidden_size": [16, 32, 64],
                           "learning_rate_init": [1e-3, 1e-2]}, cv=5)
    with joblib.parallel_backend("dask"):   # joblib.parallel_config(backend="dask")
        search.fit(X, y)

Each fit runs in one worker process and uses its numba threads, so give each worker
one Dask thread (``threads_per_worker=1``) and split the machine's cores between the
workers with ``NUMBA_NUM_THREADS`` (with ``dask worker`` on the command line, set the
variable in its environment). Results equal a single-process search, bit for bit: on
the CPU a fit does not depend on the number of numba threads.

Numba's compiled kernels are cached on disk (``cache=True``): each new worker process
loads them instead of compiling (about 2 s instead of half a minute). Numba writes
its cache files atomically, so workers that start at once and compile together do not
corrupt each other's cache; by default it lives in ``numlstm/__pycache__`` (or numba's
user cache directory when that is not writable). On a cluster whose nodes share a
network file system, point ``NUMBA_CACHE_DIR`` at a node-local directory, through the
workers' environment, e.g. ``LocalCluster(env={"NUMBA_CACHE_DIR": "/tmp/numba"})``.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict_dask"]


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "predict_dask needs dask with its array module, which could not be imported. "
            "Install it with `pip install numlstm[dask]` (or `pip install \"dask[array]\" "
            "distributed`)."
        ) from exc
    return dask, da


def _apply(block, estimator, method, out_shape, dtype):
    if block.shape[0] == 0:
        # Boolean indexing with unknown chunk sizes can leave blocks without a sequence;
        # the estimators refuse 0 samples, so answer with the empty rows ourselves.
        return np.empty((0,) + out_shape, dtype=dtype)
    return getattr(estimator, method)(block)


def predict_dask(estimator, X, method="predict", *, chunk_size=None):
    """Apply a fitted estimator to a ``dask.array`` of sequences, block by block.

    Each block holds whole sequences (all their timesteps and features) and is passed to
    ``getattr(estimator, method)``; the results are assembled into a lazy dask array
    with one row per sequence. Nothing is computed until you call ``.compute()`` (or
    store the result); with a ``distributed`` client the blocks run on its workers, the
    estimator being sent to each worker once.

    Parameters
    ----------
    estimator : fitted LSTMRegressor or LSTMClassifier
        The model (any fitted estimator whose ``method`` maps sequences to rows works).
    X : dask.array.Array or array-like of shape (n_samples, n_timesteps, n_features) \
            or (n_samples, n_timesteps)
        Sequences, all of the same length (pad ragged data beforehand, or predict it
        in-process from a list). Blocks may split the sample axis anywhere; chunks
        along the other axes are merged. The number of timesteps and features must be
        known (no NaN in ``X.shape[1:]``); the number of samples need not be. Any other
        array is wrapped with ``dask.array.asarray``.
    method : str, default="predict"
        Method to apply: ``"predict"``, ``"predict_proba"``, ``"predict_log_proba"``...
    chunk_size : int, default=None
        Number of sequences per block; ``None`` keeps the blocks of ``X`` along the
        sample axis. Larger blocks are faster (the kernels batch sequences), up to
        memory: a block needs roughly ``chunk_size * n_timesteps * hidden_size * 8``
        bytes per LSTM layer during prediction. Rechunking needs the number of samples
        of each block: when it is unknown (e.g. after boolean indexing), call
        ``X.compute_chunk_sizes()`` first or leave ``chunk_size=None``.

    Returns
    -------
    result : dask.array.Array
        Lazy array of shape ``(n_samples,) + out_shape``, where ``out_shape`` and the
        dtype are those of ``getattr(estimator, method)`` on one sequence: e.g.
        ``(n_samples,)`` with the labels' dtype for a classifier's ``predict``,
        ``(n_samples, n_classes)`` for ``predict_proba``, ``(n_samples, n_timesteps,
        n_outputs)`` for a sequence-to-sequence regressor. Its blocks follow those of
        ``X`` along the sample axis.

    Raises
    ------
    ImportError
        If dask (with ``dask.array``) is not installed.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    AttributeError
        If the estimator has no method ``method``.
    ValueError
        If ``X`` is not 2-D or 3-D, or its number of timesteps or features is unknown,
        or ``chunk_size`` is given while the number of samples of its blocks is unknown.

    See Also
    --------
    numlstm.dask : The module documentation, with a recipe for ``GridSearchCV`` on a
        Dask cluster.

    Notes
    -----
    To learn the shape and dtype of the result, the method is applied once, in the
    calling process, to a single sequence of zeros. Predictions of float32 models can
    differ from a single in-process call on all of ``X`` at the level of float32
    rounding, because the kernels batch the sequences of each block together; they
    equal the in-process predictions of the same blocks.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from numlstm import LSTMClassifier
    >>> from numlstm.dask import predict_dask
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8, 2))
    >>> y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    >>> clf = LSTMClassifier(hidden_size=8, max_iter=5, random_state=0).fit(X, y)
    >>> X_big = da.from_array(X, chunks=(50, 8, 2))
    >>> labels = predict_dask(clf, X_big)
    >>> labels
    dask.array<numlstm-predict, shape=(200,), dtype=<U4, chunksize=(50,), chunktype=numpy.ndarray>
    >>> proba = predict_dask(clf, X_big, "predict_proba", chunk_size=100)
    >>> proba.shape, proba.chunks
    ((200, 2), ((100, 100), (2,)))
    >>> bool((labels.compute() == clf.predict(X)).all())
    True
    """
    dask, da = _import_dask()
    check_is_fitted(estimator)
    if not isinstance(method, str) or not callable(getattr(estimator, method, None)):
        raise AttributeError(f"{type(estimator).__name__} has no method {method!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool)
                                   or not isinstance(chunk_size, numbers.Integral)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if not isinstance(X, da.Array):
        X = da.asarray(X)
    if X.ndim not in (2, 3):
        raise ValueError(f"X must be 3-D (n_samples, n_timesteps, n_features) or 2-D "
                         f"(n_samples, n_timesteps), got a {X.ndim}-D array of shape "
                         f"{X.shape}")
    if any(np.isnan(size) for size in X.shape[1:]):
        raise ValueError(f"X has shape {X.shape}: the number of timesteps and features "
                         "must be known; call X.compute_chunk_sizes() first")
    chunks = {axis: -1 for axis in range(1, X.ndim)}
    if chunk_size is not None:
        if any(np.isnan(size) for size in X.chunks[0]):
            raise ValueError("chunk_size needs the number of samples of each block of X, "
                             f"which is unknown (X has shape {X.shape}, e.g. after boolean "
                             "indexing): call X.compute_chunk_sizes() first, or leave "
                             "chunk_size=None to keep the blocks of X")
        chunks[0] = int(chunk_size)
    X = X.rechunk(chunks)

    dtype = X.dtype if X.dtype.kind == "f" else np.float64
    probe = np.asarray(getattr(estimator, method)(np.zeros((1,) + X.shape[1:], dtype=dtype)))
    if probe.ndim == 0 or probe.shape[0] != 1:
        raise ValueError(f"{type(estimator).__name__}.{method} does not return one row per "
                         f"sequence (got shape {probe.shape} for one sequence)")
    out_ndim = probe.ndim
    extra = {}
    if out_ndim < X.ndim:
        extra["drop_axis"] = list(range(out_ndim, X.ndim))
    elif out_ndim > X.ndim:
        extra["new_axis"] = list(range(X.ndim, out_ndim))
    out_chunks = (X.chunks[0],) + tuple((size,) for size in probe.shape[1:])
    shared = dask.delayed(estimator, pure=True)
    meta = np.empty((0,) * out_ndim, dtype=probe.dtype)
    return da.map_blocks(_apply, X, shared, method, probe.shape[1:], probe.dtype,
                         dtype=probe.dtype, chunks=out_chunks, token=f"numlstm-{method}",
                         meta=meta, **extra)
