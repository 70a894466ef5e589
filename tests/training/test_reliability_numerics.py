"""Numerics: long sequences, saturated inputs, exact clipping, NaN detected where it appears.

A NaN or infinity in training is an error (``TrainingDivergedError``), not a warning: it is
raised on the mini-batch step where the first non-finite value shows up, training stops
there, and the estimator keeps the last finite weights (those of the last step whose loss
and gradient were finite).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from numlstm import LSTM
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMClassifier, LSTMRegressor, TrainingDivergedError
from numlstm.training.optimizers import clip_grad_norm, global_norm

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------- long sequences
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ten_thousand_steps_stay_finite(dtype):
    rng = np.random.default_rng(0)
    layer = LSTM(2, 6, num_layers=2, bidirectional=True, dtype=dtype, random_state=0)
    x = 3.0 * rng.standard_normal((3, 10_000, 2))
    lengths = np.array([10_000, 7_000, 1])
    out, (h_n, c_n) = layer.forward(x, lengths=lengths)
    grads, dx = layer.backward(rng.standard_normal(out.shape))
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert np.isfinite(h_n).all() and np.isfinite(c_n).all()
    assert np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in grads.values())
    # the cell state of an open forget gate grows at most linearly: |c_t| <= t
    assert np.abs(c_n).max() <= 10_000


def test_estimator_on_ten_thousand_steps():
    X, y = make_adding_problem(8, 10_000, random_state=0)
    reg = LSTMRegressor(hidden_size=4, max_iter=2, random_state=0).fit(X, y)
    assert np.isfinite(reg.loss_curve_).all()
    assert np.isfinite(reg.predict(X)).all()


# -------------------------------------------------------------- saturated inputs
@settings(max_examples=40, deadline=None)
@given(exponent=st.integers(0, 30), dtype=st.sampled_from([np.float32, np.float64]),
       weight_scale=st.sampled_from([0.5, 5.0, 50.0]), seed=st.integers(0, 1000))
def test_saturated_inputs_stay_finite(exponent, dtype, weight_scale, seed):
    rng = np.random.default_rng(seed)
    layer = LSTM(3, 4, bidirectional=True, dtype=dtype, random_state=0)
    layer.load_state_dict({k: rng.uniform(-weight_scale, weight_scale, v.shape)
                           for k, v in layer.state_dict().items()})
    # float32 holds 1e30 * 3 * 50 (~1e32) without overflow
    x = rng.choice([-1.0, 1.0], size=(5, 7, 3)) * 10.0**exponent
    out, (h_n, c_n) = layer.forward(x)
    grads, dx = layer.backward(np.ones_like(out), d_h_n=np.ones_like(h_n),
                               d_c_n=np.ones_like(c_n))
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert np.isfinite(c_n).all() and np.abs(c_n).max() <= 7.0
    assert np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in grads.values())


def test_estimators_on_saturated_inputs():
    rng = np.random.default_rng(0)
    X = rng.choice([-1e12, 1e12], size=(40, 6, 2))
    y = (X[:, :, 0] > 0).sum(axis=1).astype(float)
    reg = LSTMRegressor(hidden_size=4, max_iter=3, random_state=0).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    assert np.isfinite(reg.predict(X * 1e6)).all()  # far outside the training range
    clf = LSTMClassifier(hidden_size=4, max_iter=3, random_state=0).fit(X, y > 3)
    proba = clf.predict_proba(X * 1e6)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# -------------------------------------------------------------------- clipping
@st.composite
def gradient_lists(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shapes = draw(st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple),
                           min_size=1, max_size=4))
    exponent = draw(st.integers(-20, 30))
    elements = st.floats(-10, 10, width=32)
    return [draw(arrays(dtype, shape, elements=elements)) * dtype(10.0**exponent)
            for shape in shapes]


@settings(max_examples=200, deadline=None)
@given(grads=gradient_lists(), max_norm=st.floats(1e-6, 1e6))
def test_clip_grad_norm_is_exact(grads, max_norm):
    before = [g.copy() for g in grads]
    norm_before = global_norm(before)
    returned = clip_grad_norm(grads, max_norm)
    assert returned == norm_before
    norm_after = global_norm(grads)
    assert norm_after <= max_norm
    if norm_before <= max_norm:
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)
    else:
        # same direction, one common factor, and no more shrinking than rounding needs
        scale = norm_after / norm_before
        assert norm_after >= max_norm * (1 - 1e-5)
        for g, b in zip(grads, before):
            np.testing.assert_allclose(g, b * scale, rtol=1e-5,
                                       atol=1e-5 * scale * np.abs(b).max())


def test_clip_grad_norm_leaves_non_finite_for_the_caller():
    grads = [np.array([1.0, np.nan]), np.array([3.0])]
    assert np.isnan(clip_grad_norm(grads, 1.0))
    assert grads[1][0] == 3.0  # untouched


# ------------------------------------------------------ NaN during training
X_NAN, Y_NAN = make_adding_problem(64, 6, random_state=0)


def _record_steps(monkeypatch, est, bad_call, what):
    """Make the ``bad_call``-th training step produce a non-finite ``what``."""
    calls = []
    net = est.network_
    original = type(net).loss_and_gradient

    def loss_and_gradient(self, *args, **kwargs):
        calls.append(self.get_flat_params())
        loss = original(self, *args, **kwargs)
        if len(calls) == bad_call:
            if what == "loss":
                return np.nan
            self.lstm.flat_gradient[3] = np.inf
        return loss

    monkeypatch.setattr(type(net), "loss_and_gradient", loss_and_gradient)
    return calls


@pytest.mark.parametrize("what", ["loss", "gradient"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_nan_mid_training_detected_on_its_step(monkeypatch, what, solver):
    # 64 samples in batches of 16: 4 steps per epoch; the NaN comes at step 2 of epoch 3
    est = LSTMRegressor(hidden_size=4, batch_size=16, max_iter=5, solver=solver,
                        random_state=0).partial_fit(X_NAN, Y_NAN)
    est.set_params(warm_start=True)
    calls = _record_steps(monkeypatch, est, bad_call=4 + 4 + 2, what=what)
    with pytest.raises(TrainingDivergedError, match=f"the {what} became NaN") as info:
        est.fit(X_NAN, Y_NAN)
    assert (info.value.epoch, info.value.step) == (1 + 2 + 1, 2)
    assert len(calls) == 10  # training stopped on that step
    assert est.n_iter_ == 1 + 2 and len(est.loss_curve_) == 3
    # last finite weights: those of step 9, the last one with a finite loss and gradient
    np.testing.assert_array_equal(est.network_.get_flat_params(), calls[8])
    assert np.isfinite(est.predict(X_NAN)).all()


def test_non_finite_weights_after_an_update_are_undone(monkeypatch):
    est = LSTMRegressor(hidden_size=4, batch_size=16, max_iter=5, random_state=0)
    est.partial_fit(X_NAN, Y_NAN)
    opt_class = type(est._optimizer)
    original = opt_class.update_params
    seen = []

    def update_params(self, params, grads):
        seen.append([p.copy() for p in params])
        original(self, params, grads)
        if len(seen) == 3:
            params[0][5] = np.nan

    monkeypatch.setattr(opt_class, "update_params", update_params)
    with pytest.raises(TrainingDivergedError, match="weights became NaN") as info:
        est.partial_fit(X_NAN, Y_NAN)
    assert (info.value.epoch, info.value.step) == (2, 3)
    assert len(seen) == 3
    for param, before in zip(est.network_.params, seen[2]):
        np.testing.assert_array_equal(param, before)
    assert est.n_iter_ == 1
    assert not hasattr(est, "_optimizer")  # a fresh optimizer next time


def test_lbfgs_survives_overflowing_steps_and_never_keeps_nan():
    X, y = make_adding_problem(40, 5, random_state=0)
    reg = LSTMRegressor(hidden_size=3, solver="lbfgs", max_iter=15, random_state=0)
    reg.fit(X * 1e3, y * 1e8)
    assert reg.network_.all_finite()
    assert np.isfinite(reg.predict(X)).all()
