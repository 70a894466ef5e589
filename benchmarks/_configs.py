"""Sizes and small helpers shared by the asv benchmarks.

Sizes are ``(batch, timesteps, input_size, hidden_size)``. The grid is kept small on purpose:
CI runs the whole suite once with ``--quick`` on a 2-core machine.
"""

import inspect
import warnings

import numpy as np

#: (batch, timesteps, input_size, hidden_size) of the layer and estimator benchmarks.
SIZES = [
    (16, 20, 8, 32),
    (64, 50, 32, 128),
    (64, 100, 64, 256),
]

#: Float types every parametrised benchmark runs in.
DTYPES = ["float32", "float64"]

PARAMS = [SIZES, DTYPES]
PARAM_NAMES = ["size", "dtype"]

#: Batches per epoch in the ``fit`` benchmarks (n_samples = batch * this).
BATCHES_PER_EPOCH = 4


def make_inputs(size, dtype, seed=0):
    """Random ``x`` of shape (batch, time, input) and a gradient of ones for ``out``."""
    batch, n_steps, n_inputs, hidden = size
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_steps, n_inputs)).astype(dtype)
    d_out = np.ones((batch, n_steps, hidden), dtype=dtype)
    return x, d_out


def make_layer(size, dtype, **kwargs):
    """A :class:`numlstm.LSTM` for ``size`` (imported here, not at module import)."""
    from numlstm import LSTM

    _, _, n_inputs, hidden = size
    return LSTM(n_inputs, hidden, dtype=np.dtype(dtype), random_state=0, **kwargs)


def estimator_classes():
    """``(LSTMRegressor, LSTMClassifier)``; ``NotImplementedError`` (asv: skip) if absent."""
    try:
        from numlstm import LSTMClassifier, LSTMRegressor
    except ImportError as exc:
        raise NotImplementedError(f"numlstm estimators are not available: {exc}") from exc
    return LSTMRegressor, LSTMClassifier


def make_estimator(cls, size, dtype, max_iter=1):
    """An estimator sized like ``size`` that trains exactly ``max_iter`` epochs.

    Only the options the estimator has are passed (it is written separately from this
    suite); early stopping and convergence checks are switched off so every epoch runs.
    """
    batch, _, _, hidden = size
    wanted = {
        "hidden_size": hidden,
        "batch_size": batch,
        "max_iter": max_iter,
        "dtype": dtype,
        "random_state": 0,
        "early_stopping": False,
        "shuffle": False,
        "tol": 0.0,
        "n_iter_no_change": max_iter + 1,
        "verbose": 0,
    }
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in wanted.items() if k in accepted})


def regression_data(size, dtype, seed=0):
    """``X`` (batch * BATCHES_PER_EPOCH, time, input) and a 1-D target ``y``."""
    batch, n_steps, n_inputs, _ = size
    rng = np.random.default_rng(seed)
    n_samples = batch * BATCHES_PER_EPOCH
    X = rng.standard_normal((n_samples, n_steps, n_inputs)).astype(dtype)
    y = X[:, :, 0].mean(axis=1) + 0.1 * rng.standard_normal(n_samples)
    return X, y.astype(dtype)


def classification_data(size, dtype, seed=0):
    """``X`` like :func:`regression_data` and three class labels ``y``."""
    X, y = regression_data(size, dtype, seed)
    return X, np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))


def quiet_fit(model, X, y):
    """``model.fit(X, y)`` without the convergence warning a one-epoch fit raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)
