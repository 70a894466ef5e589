"""Bad and unusual input through the public API: a clear answer, never a crash.

Memory layouts and dtypes that hold valid numbers (non-contiguous views, Fortran order,
read-only buffers, big-endian floats and ints, int and bool X) give exactly the results of
the plain float array. Inputs that cannot be valid (0-length sequences, lengths of 0,
sizes that cannot fit in memory) raise ``ValueError``/``TypeError``/``MemoryError``
before anything large is allocated.
"""

import warnings

import numpy as np
import pytest

from numlstm import LSTM
from numlstm.estimators import LSTMClassifier, LSTMRegressor
from numlstm.estimators import _base

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X_INT = RNG.integers(-3, 4, size=(12, 5, 2))  # values every variant can hold exactly


def _variants(a):
    """The same numbers in other layouts and dtypes: name -> array."""
    readonly = a.astype(np.float64)
    readonly.flags.writeable = False
    wide = np.repeat(a.astype(np.float64), 2, axis=1)
    return {
        "non-contiguous": wide[:, ::2],
        "fortran": np.asfortranarray(a.astype(np.float64)),
        "reversed-strides": np.flip(np.flip(a.astype(np.float64), 0).copy(), 0),
        "read-only": readonly,
        "big-endian-f8": a.astype(">f8"),
        "big-endian-f4": a.astype(">f4"),
        "big-endian-i4": a.astype(">i4"),
        "int64": a.astype(np.int64),
        "int8": a.astype(np.int8),
        "float16": a.astype(np.float16),
        "list": a.tolist(),
    }


BOOL_X = RNG.integers(0, 2, size=(12, 5, 2)).astype(bool)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(_variants(X_INT)))
def test_layer_accepts_any_layout_and_numeric_dtype(name, dtype):
    layer = LSTM(2, 3, num_layers=2, bidirectional=True, dtype=dtype, random_state=0)
    lengths = np.array([5, 1, 3, 5, 2, 4, 5, 5, 1, 2, 3, 4])
    ref_out, (ref_h, _) = layer.forward(X_INT.astype(np.float64), lengths=lengths)
    ref_grads, ref_dx = layer.backward(np.ones_like(ref_out))
    ref_grads = {k: v.copy() for k, v in ref_grads.items()}
    x = _variants(X_INT)[name]
    for lengths_variant in (lengths, lengths.astype(">i4"), lengths.astype(float),
                            np.repeat(lengths, 2)[::2], lengths.tolist()):
        out, (h_n, _) = layer.forward(x, lengths=lengths_variant)
        grads, dx = layer.backward(np.ones_like(out))
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(h_n, ref_h)
        np.testing.assert_array_equal(dx, ref_dx)
        for key in ref_grads:
            np.testing.assert_array_equal(grads[key], ref_grads[key])
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        assert not x.flags.writeable  # untouched


def test_layer_accepts_bool_input():
    layer = LSTM(2, 3, random_state=0)
    out, _ = layer.forward(BOOL_X)
    ref, _ = layer.forward(BOOL_X.astype(np.float32))
    np.testing.assert_array_equal(out, ref)


def test_layer_states_in_any_layout():
    layer = LSTM(2, 3, dtype=np.float64, random_state=0)
    h0 = RNG.normal(size=(1, 12, 3))
    ref = layer.forward(X_INT, h0=h0, c0=h0)[0]
    for variant in (h0.astype(">f8"), np.asfortranarray(h0), np.repeat(h0, 2, axis=2)[..., ::2]):
        variant = np.array(variant)
        variant.flags.writeable = False
        np.testing.assert_array_equal(layer.forward(X_INT, h0=variant, c0=variant)[0], ref)


@pytest.mark.parametrize("x, lengths, exc, match", [
    (np.zeros((3, 0, 2)), None, ValueError, "at least one"),
    (np.zeros((0, 4, 2)), None, ValueError, "at least one"),
    (np.zeros((3, 4, 2)), [4, 0, 2], ValueError, "lengths must lie in"),
    (np.zeros((3, 4, 2)), [4, -1, 2], ValueError, "lengths must lie in"),
    (np.zeros((3, 4, 2)), [4, 5, 2], ValueError, "lengths must lie in"),
    (np.zeros((3, 4, 2)), [4, 2], ValueError, "lengths must have shape"),
    (np.zeros((3, 4, 2)), [[4, 2, 1]], ValueError, "lengths must have shape"),
    (np.zeros((3, 4, 2)), [4, 2.5, 1], TypeError, "lengths must hold integers"),
    (np.zeros((3, 4, 2)), [4, np.nan, 1], TypeError, "lengths must hold integers"),
    (np.zeros((3, 4, 2)), [True, True, False], TypeError, "lengths must hold integers"),
    (np.zeros((3, 4, 2)), ["4", "1", "2"], TypeError, "lengths must hold integers"),
    (np.zeros((3, 4, 2)), np.array([2**62, 1, 1]), ValueError, "lengths must lie in"),
    (np.zeros((3, 4, 2), dtype=complex), None, TypeError, "x must hold numbers"),
    (np.full((3, 4, 2), "a"), None, TypeError, "x must hold numbers"),
    (np.zeros((3, 4, 2), dtype=object), None, TypeError, "x must hold numbers"),
    (np.zeros((3, 4)), None, ValueError, "3-D"),
    (np.zeros((3, 4, 5)), None, ValueError, "input_size"),
])
def test_layer_bad_input(x, lengths, exc, match):
    layer = LSTM(2, 3, random_state=0)
    with pytest.raises(exc, match=match):
        layer.forward(x, lengths=lengths)


@pytest.mark.parametrize("kwargs", [
    dict(hidden_size=10**6),
    dict(hidden_size=2**31),
    dict(hidden_size=2**40),
    dict(hidden_size=30000),  # 3.6e9 weights: above 2**31
    dict(hidden_size=1000, num_layers=600),
    dict(hidden_size=64, num_layers=2**31),
    dict(hidden_size=20000),  # 1.6e9 weights: below 2**31, above this machine's memory
])
def test_layer_huge_sizes_refused_before_allocating(kwargs):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises((ValueError, MemoryError), match="hidden_size|memory"):
            LSTM(4, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


# ------------------------------------------------------------------ estimators
Y_REG = X_INT[:, :, 0].sum(axis=1).astype(float)
Y_CLF = np.where(Y_REG > 0, "up", "down")


@pytest.mark.parametrize("Est, y", [(LSTMRegressor, Y_REG), (LSTMClassifier, Y_CLF)])
def test_estimators_accept_any_layout_and_numeric_dtype(Est, y):
    params = dict(hidden_size=3, max_iter=2, random_state=0, dtype="float64")
    ref = Est(**params).fit(X_INT.astype(np.float64), y)
    ref_pred = ref.predict(X_INT.astype(np.float64))
    for name, x in list(_variants(X_INT).items()) + [("bool", BOOL_X)]:
        if name == "bool":
            ref_b = Est(**params).fit(BOOL_X.astype(np.float64), y)
            expected = ref_b.predict(BOOL_X.astype(np.float64))
        else:
            expected = ref_pred
        est = Est(**params).fit(x, y)
        np.testing.assert_array_equal(est.predict(x), expected, err_msg=name)
        np.testing.assert_array_equal(ref.predict(x) if name != "bool" else expected,
                                      expected, err_msg=name)
    # targets in odd layouts too
    y_variants = [y[::-1][::-1], np.asarray(y).copy()]
    if y.dtype.kind == "f":
        y_variants += [y.astype(">f8"), np.repeat(y, 2)[::2]]
    for yv in y_variants:
        np.testing.assert_array_equal(Est(**params).fit(X_INT, yv).predict(X_INT), ref_pred)


@pytest.mark.parametrize("X, exc, match", [
    (np.zeros((4, 0, 2)), ValueError, "0 timesteps"),
    ([np.zeros((3, 2)), np.zeros((0, 2))], ValueError, r"X\[1\] has 0 timesteps"),
    ([np.zeros(3), np.zeros(0)], ValueError, r"X\[1\] has 0 timesteps"),
    (np.zeros((0, 3, 2)), ValueError, "0 sample"),
    (np.zeros((4, 3, 2), dtype=complex), ValueError, "[Cc]omplex"),
    (np.full((4, 3, 2), None), (ValueError, TypeError), "X"),
])
def test_estimator_empty_sequences(X, exc, match):
    with pytest.raises(exc, match=match):
        LSTMRegressor(hidden_size=2, max_iter=1).fit(X, np.zeros(len(X)))


@pytest.mark.parametrize("params", [
    dict(hidden_size=10**6),
    dict(hidden_size=2**40),
    dict(hidden_size=64, num_layers=2**31),
    dict(hidden_size=30000),
])
def test_estimator_huge_sizes_refused_before_allocating(params):
    import tracemalloc

    X = np.zeros((8, 3, 1))
    tracemalloc.start()
    try:
        with pytest.raises((MemoryError, ValueError), match="memory|hidden_size"):
            LSTMRegressor(max_iter=1, **params).fit(X, np.arange(8.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_estimator_memory_check_counts_batches_and_sequence_length(monkeypatch):
    # A model that fits but whose training activations (batch x steps x gates) do not.
    monkeypatch.setattr(_base, "_available_memory", lambda: 2**30)
    X = np.zeros((64, 2000, 1), dtype=np.float32)
    y = np.arange(64.0)
    with pytest.raises(MemoryError, match="batch_size|shorter sequences") as info:
        LSTMRegressor(hidden_size=512, max_iter=1, patch_length=1).fit(X, y)
    assert "GiB" in str(info.value)
    # smaller batches fit the same budget
    reg = LSTMRegressor(hidden_size=512, max_iter=1, batch_size=2, patch_length=1)
    monkeypatch.setattr(_base.BaseLSTM, "_fit_stochastic", lambda self, *a, **k: None)
    reg.fit(X, y)


def test_estimator_memory_check_is_silent_when_memory_is_unknown(monkeypatch):
    monkeypatch.setattr(_base, "_available_memory", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LSTMRegressor(hidden_size=2, max_iter=1).fit(X_INT, Y_REG)


def test_available_memory_is_plausible():
    available = _base._available_memory()
    assert available is None or 2**20 < available < 2**50


def test_layer_forward_refuses_activations_that_cannot_fit():
    # 52 GB of gate storage for this batch: refused before the kernels allocate it.
    layer = LSTM(1, 512, random_state=0)
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (64, 100_000, 1), (0, 0, 0))
    with pytest.raises(MemoryError, match="forward pass over 64 sequences"):
        layer.forward(x)


@pytest.mark.parametrize("where", ["h0", "d_out", "state_dict"])
def test_layer_refuses_complex_values(where):
    layer = LSTM(2, 3, dtype=np.float64, random_state=0)
    x = np.ones((1, 4, 2))
    if where == "h0":
        with pytest.raises(TypeError, match="h0 must hold real numbers"):
            layer.forward(x, h0=np.ones((1, 1, 3), complex))
    elif where == "d_out":
        out, _ = layer.forward(x)
        with pytest.raises(TypeError, match="d_out must hold real numbers"):
            layer.backward(out.astype(complex))
    else:
        state = {k: v.astype(complex) for k, v in layer.state_dict().items()}
        with pytest.raises(TypeError, match="must hold real numbers"):
            layer.load_state_dict(state)


def test_a_refused_refit_leaves_the_fitted_model_as_it_was():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LSTMClassifier(hidden_size=4, max_iter=2, random_state=0).fit(
            X, np.array(["up", "down"] * 10))
        reg = LSTMRegressor(hidden_size=4, max_iter=2, random_state=0).fit(X, X[:, 0, 0])
    proba, prediction = clf.predict_proba(X), reg.predict(X)
    # One class: refused after the classes were read.
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, np.array(["flat"] * 20))
    assert list(clf.classes_) == ["down", "up"]
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    # Sequence targets with patches: refused after the target scaling was read.
    with pytest.raises(ValueError, match="patch_length"):
        reg.set_params(patch_length=3).fit(X, 1000 * X[:, :, :1])
    np.testing.assert_array_equal(reg.predict(X), prediction)
    # A warm start refused after the network was found to match: its dropout rates,
    # which a warm start takes from the parameters, are those it was trained with.
    rates = (clf.network_.lstm.input_dropout, clf.network_.output_dropout)
    assert rates[1] > 0
    with pytest.raises(ValueError, match="dropout > 0 needs a stochastic solver"):
        clf.set_params(warm_start=True, solver="lbfgs", output_dropout=0.4,
                       input_dropout=0.3).fit(X, np.array(["up", "down"] * 10))
    assert (clf.network_.lstm.input_dropout, clf.network_.output_dropout) == rates


@pytest.mark.parametrize("labels", [
    ["a", None, "b", "a"],
    np.array(["a", np.nan, "b", "a"], dtype=object),
    np.array([1.0, np.float32("nan"), 0.0, 1.0], dtype=object),
])
def test_missing_class_labels_are_named(labels):
    X = np.random.default_rng(0).normal(size=(4, 5, 1))
    with pytest.raises(ValueError, match=r"y contains 1 missing label\(s\).*index 1"):
        LSTMClassifier(hidden_size=4, max_iter=2).fit(X, labels)


def test_finite_values_too_large_to_standardise_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 8, 2))
    y = X.sum(axis=(1, 2))
    params = dict(hidden_size=4, max_iter=2, random_state=0, input_scaling="channel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = LSTMRegressor(**params).fit(X, y)
    # Beyond float32 once standardised: the network would return NaN.
    with pytest.raises(ValueError, match="too large for this model.*float32"):
        reg.predict(X * 1e40)
    # Squares beyond float64: the scale would be infinite.
    with pytest.raises(ValueError, match="y holds values too large to standardise"):
        LSTMRegressor(**params).fit(X, y * 1e160)
    with pytest.raises(ValueError, match="X holds values too large to standardise"):
        LSTMRegressor(**params).fit(X * 1e160, y)
