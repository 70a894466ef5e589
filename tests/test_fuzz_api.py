"""Fuzzing the public API with hypothesis-generated garbage.

Every call either succeeds (with outputs of the documented shapes) or raises one of the
documented exception types. Anything else -- an IndexError from deep inside, a numba
error, a segfault or an out-of-bounds read in a kernel, which would take the interpreter
down -- fails the test.

Inputs are drawn near the valid region as well as far from it, so that calls reach the
kernels: right rank with zero/odd sizes, every dtype kind (bool, ints, float16,
big-endian floats, complex, strings, objects, datetimes), NaN/inf, and every memory
layout (C, Fortran, non-contiguous views, reversed strides, read-only).

Documented exceptions:

* ``LSTM(...)``: ``ValueError``, ``TypeError``;
* ``LSTM.forward``: ``ValueError``, ``TypeError``;
* ``LSTM.backward``: ``ValueError``, ``TypeError``, ``RuntimeError`` (no forward pass);
* ``LSTM.load_state_dict``: ``KeyError``, ``ValueError``, ``TypeError``;
* estimators' ``fit``/``predict``/``score``: ``ValueError``, ``TypeError``
  (``NotFittedError`` is a ``ValueError``).
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from numlstm import LSTM
from numlstm.estimators import LSTMClassifier, LSTMRegressor

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))

DTYPES = ["<f8", "<f8", "<f4", "<f4", "<f2", ">f8", ">f4", "<i8", "<i4", ">i2", "u1", "?",
          "<c8", "<U3", "O", "<M8[s]"]
LAYOUTS = ["c", "fortran", "strided", "reversed", "readonly", "transposed"]


def _layout(a, layout):
    if a.ndim == 0:
        return a
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        # a view with a gap between elements: same values, non-contiguous
        wide = np.repeat(a, 2, axis=-1)
        return wide[..., ::2]
    if layout == "reversed":
        return a[::-1][::-1] if a.shape[0] < 2 else np.flip(np.flip(a, 0).copy(), 0)
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    return np.ascontiguousarray(a)


@st.composite
def arrays(draw, shape):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([1.0, 1e-30, 1e4, 1e30]))
    values = rng.normal(scale=scale, size=shape)
    special = draw(st.sampled_from([None] * 5 + [np.nan, np.inf, -np.inf]))
    if special is not None and values.size:
        values.flat[draw(st.integers(0, values.size - 1))] = special
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype.kind in "iu":
            a = np.nan_to_num(values, posinf=7, neginf=-7).astype(dtype)
        elif dtype.kind == "b":
            a = values > 0
        elif dtype.kind == "U":
            a = values.astype(str).astype(dtype)
        elif dtype.kind == "O":
            a = values.astype(object)
            if a.size and draw(st.booleans()):
                a.flat[0] = draw(st.sampled_from([None, "x", [1, 2], 3]))
        elif dtype.kind == "M":
            a = np.nan_to_num(values, posinf=7, neginf=-7).astype("<i8").astype(dtype)
        else:
            a = values.astype(dtype)
    return _layout(a, draw(st.sampled_from(LAYOUTS)))


OTHER_GARBAGE = st.sampled_from([None, 3, 2.5, "abc", b"\x00", [[1.0, 2.0], [3.0]], {"a": 1},
                                 [], (), [[[]]], object()])


def near_valid(shape_strategy):
    """Arrays of a near-valid shape, of any dtype and layout, or other garbage."""
    return st.one_of(shape_strategy.flatmap(arrays), OTHER_GARBAGE,
                     st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
                     .flatmap(arrays))


def mostly(valid, garbage, n_valid=4):
    """``valid`` about ``n_valid`` times as often as ``garbage``."""
    return st.one_of(*([valid] * n_valid), garbage)


# Sizes that cannot fit in memory must be refused before anything is allocated.
SIZES = mostly(st.integers(1, 5), n_valid=10, garbage=st.one_of(
    st.integers(-3, 0), st.sampled_from([2**31, 2**40, 2**63, 2**64]),
    st.sampled_from([np.int64(3), np.uint8(2), 2.0, np.float64(3.0), True, None, "4", [3],
                     1 + 0j])))
LAYER_COUNTS = mostly(st.integers(1, 5), n_valid=10, garbage=st.one_of(
    st.integers(-3, 0), st.sampled_from([np.int64(3), 2.0, True, None, "4", 2**31, 2**40])))


def _shape(x):
    try:
        return np.shape(x)
    except ValueError:  # a ragged nested list
        return (len(x),)


@settings(max_examples=150, **SETTINGS)
@given(input_size=SIZES, hidden_size=SIZES, num_layers=LAYER_COUNTS,
       bidirectional=mostly(st.booleans(), st.sampled_from([0, 1, "yes", None,
                                                            np.bool_(True)]), 20),
       dropout=mostly(st.sampled_from([0.0, 0.5]),
                      st.sampled_from([-0.1, 1.0, np.nan, "0.1", None, 1]), 20),
       dtype=mostly(st.sampled_from([np.float32, np.float64, "float32"]),
                    st.sampled_from(["float16", "int8", None, "nonsense", object, 3]), 20),
       forget_bias=mostly(st.sampled_from([1.0, None, 0, -3.5]),
                          st.sampled_from([np.nan, "x", [1.0, 2.0], object()]), 20),
       random_state=mostly(st.sampled_from([None, 0, np.random.default_rng(0),
                                            np.random.RandomState(0)]),
                           st.sampled_from([-1, 2**70, "seed", 1.5]), 20),
       device=mostly(st.sampled_from(["cpu", "auto"]),
                     st.sampled_from(["tpu", None, 0, "CPU"]), 20))
def test_lstm_constructor(input_size, hidden_size, num_layers, bidirectional, dropout, dtype,
                          forget_bias, random_state, device):
    try:
        layer = LSTM(input_size, hidden_size, num_layers=num_layers,
                     bidirectional=bidirectional, dropout=dropout, dtype=dtype,
                     forget_bias=forget_bias, random_state=random_state, device=device)
    except (ValueError, TypeError) as exc:
        event(f"LSTM(): {type(exc).__name__}")
        return
    event("LSTM(): ran")
    assert layer.flat_parameters.size > 0
    assert layer.dtype in (np.float32, np.float64)


LAYERS = [
    dict(input_size=2, hidden_size=3),
    dict(input_size=1, hidden_size=2, num_layers=2, bidirectional=True, dtype=np.float64),
    dict(input_size=3, hidden_size=1, bidirectional=True),
]
_layers = [LSTM(random_state=0, **kw) for kw in LAYERS]

batch_shapes = st.tuples(st.integers(0, 9), st.integers(0, 4), st.integers(0, 4))


@settings(max_examples=500, **SETTINGS)
@given(which=st.integers(0, len(LAYERS) - 1), data=st.data(),
       requires_grad=st.booleans())
def test_lstm_forward_backward(which, data, requires_grad):
    layer = _layers[which]
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    x = data.draw(mostly(
        st.tuples(st.integers(0, 11), st.integers(0, 5)).map(lambda s: s + (I,))
        .flatmap(arrays),
        near_valid(batch_shapes)), label="x")
    shape = _shape(x)
    B = shape[0] if len(shape) >= 1 else 1
    T = shape[1] if len(shape) >= 2 else 1
    valid_lengths = st.lists(st.integers(1, max(T, 1)), min_size=B, max_size=B).map(np.array)
    lengths = data.draw(mostly(
        st.one_of(st.none(), valid_lengths,
                  valid_lengths.flatmap(
                      lambda a: st.sampled_from(LAYOUTS).map(lambda lay: _layout(a, lay))),
                  valid_lengths.map(lambda a: a.astype(">i4")),
                  valid_lengths.map(lambda a: a.astype(float))),
        st.one_of(st.lists(st.integers(-2, T + 2), min_size=B, max_size=B).map(np.array),
                  near_valid(st.tuples(st.integers(0, 9))))), label="lengths")
    state_shape = st.just((L * D, B, H))
    h0 = data.draw(st.one_of(st.none(), st.none(), state_shape.flatmap(arrays),
                             near_valid(st.tuples(st.integers(0, 3), st.integers(0, 9),
                                                  st.integers(0, 4)))), label="h0")
    try:
        out, (h_n, c_n) = layer.forward(x, h0=h0, c0=h0, lengths=lengths,
                                        requires_grad=requires_grad)
    except (ValueError, TypeError) as exc:
        event(f"forward: {type(exc).__name__}")
        return
    event("forward: ran")
    B, T = _shape(x)[:2]
    assert out.shape == (B, T, D * H) and out.dtype == layer.dtype
    assert h_n.shape == c_n.shape == (L * D, B, H)

    d_out = data.draw(mostly(st.just((B, T, D * H)).flatmap(arrays),
                             near_valid(batch_shapes)), label="d_out")
    d_h = data.draw(st.one_of(st.none(), state_shape.flatmap(arrays)), label="d_h_n")
    try:
        grads, dx = layer.backward(d_out, d_h_n=d_h, d_c_n=d_h)
    except (ValueError, TypeError) as exc:
        event(f"backward: {type(exc).__name__}")
        return
    except RuntimeError:
        assert not requires_grad  # the only documented reason
        event("backward: RuntimeError")
        return
    event("backward: ran")
    assert requires_grad
    assert dx.shape == (B, T, I)
    for name, view in layer.parameters().items():
        assert grads[name].shape == view.shape


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_lstm_load_state_dict(data):
    layer = LSTM(2, 3, bidirectional=True, random_state=0)
    state = layer.state_dict()
    keys = list(state)
    mutation = data.draw(st.sampled_from(["drop", "extra", "shape", "values", "none"]))
    if mutation == "drop":
        del state[data.draw(st.sampled_from(keys))]
    elif mutation == "extra":
        state[data.draw(st.text(max_size=5))] = np.zeros(3)
    elif mutation == "shape":
        key = data.draw(st.sampled_from(keys))
        state[key] = data.draw(near_valid(st.just(state[key].shape[:1])))
    elif mutation == "values":
        key = data.draw(st.sampled_from(keys))
        state[key] = data.draw(arrays(state[key].shape))
    before = layer.flat_parameters.copy()
    try:
        layer.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        event(f"load_state_dict: {type(exc).__name__}")
        np.testing.assert_array_equal(layer.flat_parameters, before)  # all or nothing
        return
    assert np.isfinite(layer.flat_parameters).all()


X_FIT = np.random.default_rng(0).normal(size=(12, 4, 2))
Y_REG = X_FIT[:, :, 0].sum(axis=1)
Y_CLF = np.where(Y_REG > 0, "up", "down")


def _fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (LSTMRegressor(hidden_size=2, max_iter=1, random_state=0).fit(X_FIT, Y_REG),
                LSTMClassifier(hidden_size=2, max_iter=1, random_state=0).fit(X_FIT, Y_CLF))


_REG, _CLF = _fitted()
sample_shapes = st.tuples(st.integers(0, 7), st.integers(0, 4), st.integers(0, 3))


def _x_strategy():
    ragged = st.lists(st.tuples(st.integers(0, 4)).map(lambda s: s + (2,)).flatmap(arrays),
                      min_size=1, max_size=4)
    return st.one_of(near_valid(sample_shapes),
                     *[st.tuples(st.integers(1, 7), st.integers(1, 4)).map(lambda s: s + (2,))
                       .flatmap(arrays)] * 3, ragged)


@settings(max_examples=120, **SETTINGS)
@given(X=_x_strategy(), data=st.data(), classifier=st.booleans())
def test_estimator_fit(X, data, classifier):
    shape = _shape(X)
    n = shape[0] if shape else 1
    labels = st.lists(st.sampled_from([0, 1, 2, "a", "b", 1.5, None, np.nan]),
                      min_size=n, max_size=n).map(lambda v: np.array(v, dtype=object))
    y = data.draw(st.one_of(st.just((n,)).flatmap(arrays), labels,
                            st.just((n,)).flatmap(arrays), labels,
                            near_valid(st.tuples(st.integers(0, 7)))), label="y")
    Est = LSTMClassifier if classifier else LSTMRegressor
    est = Est(hidden_size=2, max_iter=1, batch_size=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except (ValueError, TypeError) as exc:
            event(f"fit: {type(exc).__name__}")
            return
        event("fit: ran")
        pred = est.predict(X)
    assert pred.shape[0] == n


@settings(max_examples=150, **SETTINGS)
@given(X=_x_strategy(), classifier=st.booleans(),
       method=st.sampled_from(["predict", "score", "predict_proba"]))
def test_estimator_predict(X, classifier, method):
    est = _CLF if classifier else _REG
    if method == "predict_proba" and not classifier:
        method = "predict"
    shape = _shape(X)
    n = shape[0] if shape else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if method == "score":
                result = est.score(X, (Y_CLF if classifier else Y_REG)[:n])
                assert np.ndim(result) == 0
                return
            result = getattr(est, method)(X)
        except (ValueError, TypeError) as exc:
            event(f"{method}: {type(exc).__name__}")
            return
        event(f"{method}: ran")
    assert result.shape[0] == n


def test_unfitted_estimators_raise_not_fitted():
    from sklearn.exceptions import NotFittedError

    for est in (LSTMRegressor(), LSTMClassifier()):
        with pytest.raises(NotFittedError):
            est.predict(X_FIT)
