"""Tests of LSTMRegressor and LSTMClassifier: API, scikit-learn integration, bad input."""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import central_difference_gradient
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMClassifier, LSTMRegressor, TrainingDivergedError
from numlstm import LSTM
from numlstm.nn.losses import LOSS_FUNCTIONS, OUTPUT_ACTIVATIONS
from numlstm.nn.network import LSTMNetwork

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_size=8, max_iter=15, random_state=0)


def _adding(n=160, T=8, seed=0):
    return make_adding_problem(n_samples=n, seq_len=T, random_state=seed)


def _sign_task(n=120, T=6, seed=0, labels=("down", "up")):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 2))
    y = np.where(X[:, :, 0].sum(axis=1) > 0, labels[1], labels[0])
    return X, y


def _three_class_task(n=150, T=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(scale=0.5, size=(n, T, 1)) + y[:, None, None]
    return X, y


@pytest.fixture(scope="module")
def fitted_regressor():
    X, y = _adding()
    return LSTMRegressor(hidden_size=16, max_iter=40, random_state=0).fit(X, y), X, y


@pytest.fixture(scope="module")
def fitted_classifier():
    X, y = _sign_task()
    return LSTMClassifier(**SMALL).fit(X, y), X, y


# ------------------------------------------------------------ output layer and losses
@pytest.mark.parametrize("loss, sequence_output, bidirectional, num_layers", [
    ("squared_error", False, False, 1),
    ("log_loss", False, True, 2),
    ("binary_log_loss", True, True, 1),
    ("squared_error", True, False, 2),
])
def test_network_gradient_matches_finite_differences(loss, sequence_output, bidirectional,
                                                     num_layers):
    rng = np.random.default_rng(0)
    lstm = LSTM(2, 3, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64,
                random_state=0)
    k = {"log_loss": 3, "binary_log_loss": 1, "squared_error": 2}[loss]
    net = LSTMNetwork(lstm, k, loss=loss, sequence_output=sequence_output, random_state=1)
    X = rng.normal(size=(4, 5, 2))
    lengths = np.array([5, 2, 1, 4])
    shape = (4, 5, k) if sequence_output else (4, k)
    if loss == "log_loss":
        Y = np.eye(3)[rng.integers(0, 3, shape[:-1])]
    elif loss == "binary_log_loss":
        Y = rng.integers(0, 2, shape).astype(float)
    else:
        Y = rng.normal(size=shape)
    net.loss_and_gradient(X, Y, lengths, alpha=0.3)
    grad = net.get_flat_grads()
    flat_params = net.get_flat_params()

    def loss():
        net.set_flat_params(flat_params)
        return net.loss_and_gradient(X, Y, lengths, alpha=0.3)

    numeric = central_difference_gradient(loss, flat_params, eps=1e-6)
    net.set_flat_params(flat_params)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_losses_match_scikit_learn_metrics():
    from sklearn.metrics import log_loss, mean_squared_error

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    value, _ = LOSS_FUNCTIONS["log_loss"](np.eye(3)[y], raw)
    assert value == pytest.approx(log_loss(y, OUTPUT_ACTIVATIONS["softmax"](raw),
                                           labels=[0, 1, 2]))
    yb = rng.integers(0, 2, (20, 1)).astype(float)
    value, _ = LOSS_FUNCTIONS["binary_log_loss"](yb, raw[:, :1])
    p = OUTPUT_ACTIVATIONS["logistic"](raw[:, :1])
    assert value == pytest.approx(log_loss(yb.ravel(), p.ravel()))
    t = rng.normal(size=(20, 3))
    value, _ = LOSS_FUNCTIONS["squared_error"](t, raw)
    assert value == pytest.approx(0.5 * mean_squared_error(t, raw))
    # stable for huge logits
    value, grad = LOSS_FUNCTIONS["log_loss"](np.eye(2)[[0]], np.array([[1e4, -1e4]]))
    assert value == 0.0 and np.isfinite(grad).all()


# --------------------------------------------------------------------------- basics
def test_regressor_fit_predict_score(fitted_regressor):
    reg, X, y = fitted_regressor
    pred = reg.predict(X)
    assert pred.shape == y.shape and pred.dtype == np.float64
    assert reg.score(X, y) > 0.8
    assert reg.n_features_in_ == 2
    assert reg.n_iter_ == len(reg.loss_curve_) >= 1
    assert reg.t_ == reg.n_iter_ * X.shape[0]
    assert reg.best_loss_ == min(reg.loss_curve_)
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]
    assert reg.validation_scores_ is None


def test_network_is_reachable_for_research(fitted_regressor):
    reg, X, _ = fitted_regressor
    net = reg.network_
    assert isinstance(net.lstm, LSTM)
    assert net.lstm.hidden_size == 16 and net.lstm.dtype == np.float32
    state = net.state_dict()
    assert state["output.weight"].shape == (1, 16)
    assert "weight_hh_l0" in state
    assert all(np.isfinite(p).all() for p in net.params)


def test_multioutput_and_column_targets():
    X, y = _adding(n=100)
    Y = np.column_stack([y, -2 * y + 1])
    reg = LSTMRegressor(**SMALL).fit(X, Y)
    assert reg.predict(X).shape == (100, 2)
    assert reg.n_outputs_ == 2
    reg = LSTMRegressor(**SMALL).fit(X, y[:, None])
    assert reg.predict(X).shape == (100, 1)


def test_sequence_to_sequence_regression():
    # Target at each step: running mean of the first channel (needs memory).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8, 2))
    Y = np.cumsum(X[:, :, :1], axis=1) / np.arange(1, 9)[None, :, None]
    reg = LSTMRegressor(hidden_size=16, max_iter=40, random_state=0).fit(X, Y)
    assert reg.network_.sequence_output
    pred = reg.predict(X)
    assert pred.shape == (120, 8, 1)
    assert reg.score(X, Y) > 0.8


def test_ragged_sequences_honour_lengths():
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 9, size=60)
    seqs = [rng.normal(size=(t, 2)) for t in lengths]
    y = np.array([s[:, 0].sum() for s in seqs])
    reg = LSTMRegressor(**SMALL).fit(seqs, y)
    pred = reg.predict(seqs)
    # Padding must not matter: each sequence alone gives the same prediction.
    alone = np.array([reg.predict(s[None])[0] for s in seqs[:10]])
    np.testing.assert_allclose(pred[:10], alone, rtol=1e-4, atol=1e-5)
    # Univariate ragged lists work too.
    reg.fit([s[:, 0] for s in seqs], y)
    assert reg.n_features_in_ == 1


def test_ragged_sequence_to_sequence():
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(t, 1)) for t in (3, 6, 4, 6, 2) * 8]
    targets = [np.cumsum(s, axis=0) for s in seqs]
    reg = LSTMRegressor(**SMALL).fit(seqs, targets)
    pred = reg.predict(seqs)
    assert pred.shape == (40, 6, 1)
    assert (pred[0, 3:] == 0).all() and (pred[4, 2:] == 0).all()
    assert np.isfinite(reg.score(seqs, targets))


def test_classifier_string_labels_binary(fitted_classifier):
    clf, X, y = fitted_classifier
    assert list(clf.classes_) == ["down", "up"]
    pred = clf.predict(X)
    assert pred.dtype == clf.classes_.dtype and set(pred) <= {"down", "up"}
    assert clf.score(X, y) > 0.8
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.network_.out_activation == "logistic"


def test_classifier_multiclass():
    X, y = _three_class_task()
    clf = LSTMClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert clf.score(X, y) > 0.8
    assert clf.network_.out_activation == "softmax"


def test_classifier_blobs_like_sklearn_check():
    # What sklearn's check_classifiers_train verifies, on 2-D input read as series.
    X_m, y_m = make_blobs(n_samples=300, random_state=0)
    X_m = StandardScaler().fit_transform(X_m)
    for X, y in [(X_m[y_m != 2], y_m[y_m != 2]), (X_m, y_m)]:
        clf = LSTMClassifier(random_state=0)
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            clf.fit(X, y[:-1])
        clf.fit(X.tolist(), y.tolist())
        y_pred = clf.predict(X)
        assert y_pred.shape == (len(X),)
        assert np.mean(y_pred == y) > 0.83
        proba = clf.predict_proba(X)
        assert proba.shape == (len(X), len(np.unique(y)))
        np.testing.assert_array_equal(np.argmax(proba, axis=1), y_pred)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        with pytest.raises(ValueError, match="X has 2 features"):
            clf.predict(np.stack([X, X], axis=2))
        with pytest.raises(ValueError, match="X has 2 features"):
            clf.predict_proba(np.stack([X, X], axis=2))


def test_wrong_n_features_raises():
    X, y = _adding(n=40)
    reg = LSTMRegressor(hidden_size=4, max_iter=2).fit(X, y)
    assert reg.n_features_in_ == 2
    X3 = np.concatenate([X, X[:, :, :1]], axis=2)
    msg = "X has 3 features, but LSTMRegressor is expecting 2 features as input"
    for method in (reg.predict, lambda Z: reg.score(Z, y), lambda Z: reg.partial_fit(Z, y)):
        with pytest.raises(ValueError, match=msg):
            method(X3)
    with pytest.raises(ValueError, match="X has 1 features, but LSTMRegressor is expecting 2"):
        reg.predict(X[:, :, 0])  # 2-D: univariate series
    # sequences of another length are fine for a recurrent model
    assert reg.predict(X[:, :5]).shape == (40,)
    assert LSTMRegressor(hidden_size=4, max_iter=1).fit(X[:, :, 0], y).n_features_in_ == 1


def test_predictions_invariant_to_batch_composition(fitted_regressor, fitted_classifier):
    for est, X in [(fitted_regressor[0], fitted_regressor[1]),
                   (fitted_classifier[0], fitted_classifier[1])]:
        method = est.predict_proba if hasattr(est, "predict_proba") else est.predict
        full = method(X)
        by_one = np.concatenate([method(X[i:i + 1]) for i in range(0, len(X), 7)])
        np.testing.assert_allclose(full[::7], by_one, rtol=1e-5, atol=1e-6)
        order = np.random.default_rng(0).permutation(len(X))
        np.testing.assert_allclose(method(X[order]), full[order], rtol=1e-5, atol=1e-6)


def test_dtype_float64():
    X, y = _adding(n=60)
    reg = LSTMRegressor(hidden_size=4, max_iter=3, dtype="float64", random_state=0).fit(X, y)
    assert reg.network_.lstm.dtype == np.float64
    assert reg.network_.coef_.dtype == np.float64
    reg32 = LSTMRegressor(hidden_size=4, max_iter=3, dtype=np.float32, random_state=0).fit(X, y)
    assert reg32.network_.lstm.dtype == np.float32


def test_inputs_and_targets_are_standardised():
    X, y = _adding(n=160)
    X_big = X * 1e4 + 1e5
    reg = LSTMRegressor(hidden_size=16, max_iter=40, random_state=0).fit(X_big, 1e3 * y - 7)
    assert reg.score(X_big, 1e3 * y - 7) > 0.8


def test_bidirectional_and_stacked():
    # Target is the first value: easy for the reverse direction.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 12, 1))
    y = X[:, 0, 0]
    reg = LSTMRegressor(hidden_size=8, num_layers=2, bidirectional=True, max_iter=25,
                        learning_rate_init=0.01, random_state=0).fit(X, y)
    assert reg.network_.lstm.num_directions == 2 and reg.network_.lstm.num_layers == 2
    assert reg.network_.coef_.shape == (16, 1)
    assert reg.score(X, y) > 0.8


# ----------------------------------------------------------------- solvers & training
@pytest.mark.parametrize("solver, kwargs", [
    ("adam", {}),
    ("sgd", {"learning_rate_init": 0.1}),
    ("sgd", {"learning_rate_init": 0.1, "nesterovs_momentum": False}),
    ("lbfgs", {"max_iter": 60}),
])
def test_all_solvers_learn(solver, kwargs):
    X, y = _adding(n=120)
    params = dict(dict(hidden_size=8, max_iter=20, random_state=0, solver=solver), **kwargs)
    reg = LSTMRegressor(**params).fit(X, y)
    assert reg.n_iter_ >= 1
    assert reg.loss_curve_[-1] < 0.7 * reg.loss_curve_[0]
    assert reg.score(X, y) > 0.3
    assert hasattr(reg, "partial_fit") == (solver != "lbfgs")


def test_lbfgs_classifier():
    X, y = _sign_task(n=80)
    clf = LSTMClassifier(hidden_size=8, solver="lbfgs", max_iter=40, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert len(clf.loss_curve_) >= 1 and clf.best_loss_ == min(clf.loss_curve_)


def test_determinism_with_random_state():
    X, y = _adding(n=100)
    params = dict(hidden_size=8, max_iter=5, dropout=0.3, num_layers=2)
    a = LSTMRegressor(random_state=7, **params).fit(X, y).predict(X)
    b = LSTMRegressor(random_state=7, **params).fit(X, y).predict(X)
    c = LSTMRegressor(random_state=8, **params).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_only_while_training():
    X, y = _adding(n=100)
    reg = LSTMRegressor(hidden_size=8, num_layers=2, dropout=0.5, max_iter=5,
                        random_state=0).fit(X, y)
    assert reg.network_.lstm.dropout == 0.5
    np.testing.assert_array_equal(reg.predict(X), reg.predict(X))
    plain = LSTMRegressor(hidden_size=8, num_layers=2, max_iter=5, random_state=0).fit(X, y)
    assert not np.allclose(plain.loss_curve_, reg.loss_curve_)
    with pytest.raises(ValueError, match="dropout"):
        LSTMRegressor(num_layers=2, dropout=0.5, solver="lbfgs").fit(X, y)


def test_warm_start_continues_training():
    X, y = _adding(n=100)
    reg = LSTMRegressor(hidden_size=8, max_iter=4, warm_start=True, random_state=0)
    reg.fit(X, y)
    first = list(reg.loss_curve_)
    net = reg.network_
    reg.fit(X, y)
    assert reg.network_ is net
    assert reg.n_iter_ == 8 and len(reg.loss_curve_) == 8
    assert reg.loss_curve_[:4] == first
    assert reg.loss_curve_[4] < first[0]
    reg.set_params(warm_start=False).fit(X, y)
    assert reg.n_iter_ == 4 and reg.network_ is not net
    with pytest.raises(ValueError, match="hidden_size"):
        reg.set_params(warm_start=True, hidden_size=5).fit(X, y)


def test_early_stopping_attributes():
    X, y = _adding(n=150)
    reg = LSTMRegressor(hidden_size=8, max_iter=60, early_stopping=True, n_iter_no_change=3,
                        validation_fraction=0.2, random_state=0).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_ == len(reg.loss_curve_)
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.t_ == reg.n_iter_ * 120  # 20% held out
    X, y = _three_class_task()
    clf = LSTMClassifier(hidden_size=8, max_iter=60, early_stopping=True, n_iter_no_change=3,
                         random_state=0).fit(X, y)
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
    assert clf.n_iter_ < 60  # stopped early
    with pytest.raises(ValueError, match="early_stopping"):
        LSTMRegressor(early_stopping=True).fit(X[:1], np.ones(1))
    # One held-out target has no R^2 (NaN): refused before training, where the fit
    # used to end silently with its initial weights. One held-out sequence is enough to
    # score a classifier, or a regressor of sequence targets (over its steps).
    with pytest.raises(ValueError, match="holds out 1 of 20 sequences.*at least 2"):
        LSTMRegressor(early_stopping=True, validation_fraction=0.05).fit(X[:20], y[:20] * 1.0)
    for est, target in ((LSTMClassifier(max_iter=2, hidden_size=2), y[:20]),
                        (LSTMRegressor(max_iter=2, hidden_size=2), X[:20])):
        est.set_params(early_stopping=True, validation_fraction=0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X[:20], target)
        assert np.isfinite(est.validation_scores_).all()


def test_stops_when_loss_stalls():
    X, y = _adding(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = LSTMRegressor(hidden_size=4, max_iter=200, tol=10.0, n_iter_no_change=2,
                            learning_rate="constant", random_state=0).fit(X, y)
        adaptive = LSTMRegressor(hidden_size=4, max_iter=200, tol=10.0, n_iter_no_change=2,
                                 random_state=0).fit(X, y)
    # scikit-learn's MLP rule: stop once more than n_iter_no_change epochs failed to
    # improve; the first epoch always improves on the initial infinite best loss.
    assert reg.n_iter_ == 4
    # learning_rate="adaptive" divides the step size the first two times instead, and
    # goes on from the best epoch.
    assert adaptive.n_iter_ == 4 + 3 + 3


def test_auto_budget_counts_optimizer_steps():
    X, y = _adding(n=60)
    params = dict(hidden_size=4, tol=10.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # one mini-batch per epoch: wait 50 epochs (steps) instead of 10
        one_step = LSTMRegressor(**params, learning_rate="constant").fit(X, y)
        # 60 mini-batches of 1 per epoch: 10 epochs
        many_steps = LSTMRegressor(**params, learning_rate="constant",
                                   batch_size=1).fit(X, y)
    assert one_step.n_iter_ == 52
    assert many_steps.n_iter_ == 12
    with pytest.warns(ConvergenceWarning, match=r"maximum iterations \(1000\)"):
        LSTMRegressor(hidden_size=2, tol=0.0, max_iter="auto", random_state=0,
                      n_iter_no_change=100000).fit(X[:8], y[:8])


def test_max_iter_reached_warns():
    X, y = _adding(n=40)
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        LSTMRegressor(hidden_size=4, max_iter=2, tol=0.0).fit(X, y)


def test_partial_fit_regressor():
    X, y = _adding(n=100)
    reg = LSTMRegressor(hidden_size=8, random_state=0)
    for i in range(8):
        reg.partial_fit(X, y)
        assert reg.n_iter_ == i + 1 and reg.t_ == (i + 1) * 100
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_partial_fit_classifier_needs_classes():
    X, y = _three_class_task()
    clf = LSTMClassifier(hidden_size=8, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2, 3])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2, 3])
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.predict_proba(X).shape == (150, 4)
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X[:5], [0, 1, 2, 5, 1])
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------------- scikit-learn plumbing
def test_pipeline_and_cross_val_score():
    X, y = _sign_task(n=90, labels=(0, 1))
    X2 = X[:, :, 0]  # univariate series
    # a small fixed budget of epochs, at a step size large enough for it
    params = dict(hidden_size=4, max_iter=10, learning_rate_init=0.01, random_state=0)
    pipe = make_pipeline(StandardScaler(), LSTMClassifier(**params))
    pipe.fit(X2, y)
    assert pipe.score(X2, y) > 0.7
    scores = cross_val_score(LSTMClassifier(**params), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(n_jobs):
    X, y = _adding(n=60)
    grid = GridSearchCV(LSTMRegressor(max_iter=3, random_state=0),
                        {"hidden_size": [2, 4], "learning_rate_init": [0.01, 0.03]},
                        cv=2, n_jobs=n_jobs)
    grid.fit(X, y)
    assert grid.best_params_["hidden_size"] in (2, 4)
    assert grid.predict(X).shape == (60,)


def test_clone_is_unfitted_copy(fitted_regressor):
    reg = fitted_regressor[0]
    fresh = clone(reg)
    assert fresh.get_params() == reg.get_params()
    assert not hasattr(fresh, "network_")
    with pytest.raises(NotFittedError):
        fresh.predict(fitted_regressor[1])


def test_pickle_round_trip(fitted_regressor, fitted_classifier):
    for est, X in [(fitted_regressor[0], fitted_regressor[1]),
                   (fitted_classifier[0], fitted_classifier[1])]:
        restored = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(restored.predict(X), est.predict(X))


def test_training_continues_after_unpickling():
    X, y = _adding(n=60)
    reg = LSTMRegressor(hidden_size=4, random_state=0).partial_fit(X, y)
    restored = pickle.loads(pickle.dumps(reg))
    reg.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_allclose(restored.predict(X), reg.predict(X), rtol=1e-6)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = _adding(n=60)
    reg = LSTMRegressor(hidden_size=4, max_iter=3, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == reg.n_iter_ == 3
    pattern = r"Epoch (\d+): loss = [\d.]+, validation score = n/a, [\d.]+ s"
    assert [int(re.fullmatch(pattern, line).group(1)) for line in lines] == [1, 2, 3]
    LSTMRegressor(hidden_size=4, max_iter=2, verbose=1, early_stopping=True,
                  random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"Epoch 1: loss = [\d.]+, validation score = -?[\d.]+, [\d.]+ s",
                        lines[0])


# ------------------------------------------------------------------------ bad input
X_OK, Y_OK = make_adding_problem(10, 4, random_state=0)


@pytest.mark.parametrize("X, y, exc, match", [
    (X_OK[:, :, 0].ravel(), Y_OK, ValueError, "X must be 3-D"),
    (X_OK[..., None], Y_OK, ValueError, "X must be 3-D"),
    (X_OK, Y_OK[:-1], ValueError, "X and y have inconsistent numbers of samples"),
    (np.where(np.eye(10, 4, dtype=bool)[:, :, None], np.nan, X_OK), Y_OK, ValueError,
     "Input X contains NaN"),
    (np.where(np.eye(10, 4, dtype=bool)[:, :, None], np.inf, X_OK), Y_OK, ValueError,
     "Input X contains infinity"),
    (X_OK, np.where(np.arange(10) == 3, np.nan, Y_OK), ValueError, "Input y contains NaN"),
    (X_OK, np.where(np.arange(10) == 3, np.inf, Y_OK), ValueError, "Input y contains inf"),
    (X_OK[:0], Y_OK[:0], ValueError, "X: Found array with 0 sample"),
    (X_OK[:, :0], Y_OK, ValueError, "X has 0 timesteps"),
    (X_OK, Y_OK[:0], ValueError, "y: Found array with 0 sample"),
    ([X_OK[0], X_OK[1][:0]], Y_OK[:2], ValueError, r"X\[1\] has 0 timesteps"),
    (np.full((10, 4), "a"), Y_OK, ValueError, "X: could not convert"),
    (X_OK, None, ValueError, "requires y to be passed"),
    (X_OK, np.ones((10, 5, 1)), ValueError, "y has 5 timesteps but X has 4"),
])
def test_bad_input_regressor(X, y, exc, match):
    with pytest.raises(exc, match=match):
        LSTMRegressor(hidden_size=2, max_iter=1).fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"hidden_size": 0}, "hidden_size"),
    ({"hidden_size": -3}, "hidden_size"),
    ({"hidden_size": 2.5}, "hidden_size"),
    ({"num_layers": 0}, "num_layers"),
    ({"solver": "rmsprop"}, "solver"),
    ({"device": "tpu"}, "device"),
    ({"dtype": "float16"}, "dtype"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"dropout": 1.0}, "dropout"),
    ({"input_dropout": 1.0}, "input_dropout"),
    ({"input_dropout": "always"}, "input_dropout"),
    ({"output_dropout": 1.0}, "output_dropout"),
    ({"output_dropout": "never"}, "output_dropout"),
    ({"batch_size": 0}, "batch_size"),
    ({"clip_grad_norm": -1.0}, "clip_grad_norm"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"max_iter": 0}, "max_iter"),
    ({"alpha": -1.0}, "alpha"),
])
def test_bad_hyperparameters(params, match):
    for Est in (LSTMRegressor, LSTMClassifier):
        with pytest.raises((ValueError, TypeError), match=match):
            Est(**params).fit(X_OK, Y_OK > 1)


def test_bad_input_classifier():
    X, y = _sign_task(n=20)
    clf = LSTMClassifier(hidden_size=2, max_iter=1)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="y should be a 1d array"):
        clf.fit(X, np.ones((20, 3)))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        clf.fit(X, np.where(np.arange(20) == 2, np.nan, 1.0 * (np.arange(20) % 2)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:5])


def test_device_auto_and_cpu():
    for device in ("auto", "cpu"):
        reg = LSTMRegressor(hidden_size=2, max_iter=1, device=device).fit(X_OK, Y_OK)
        assert reg.network_.lstm.device in ("cpu", "cuda")
        assert reg.predict(X_OK).shape == (10,)


def test_cuda_device_error_is_clear(monkeypatch):
    # Pretend there is no GPU, whatever this machine has (the test run may use the CUDA
    # simulator), and check the message says what is missing.
    from numlstm._utils import cuda_support as _cuda_support

    monkeypatch.setattr(_cuda_support, "why_unavailable",
                        lambda: "no CUDA GPU or driver was found")
    with pytest.raises(RuntimeError, match="device='cuda'.*no CUDA GPU or driver"):
        LSTMRegressor(hidden_size=2, max_iter=1, device="cuda").fit(X_OK, Y_OK)


@pytest.mark.parametrize("Est", [LSTMRegressor, LSTMClassifier])
def test_not_fitted(Est):
    est = Est()
    methods = [est.predict, lambda X: est.score(X, Y_OK)]
    if hasattr(est, "predict_proba"):
        methods += [est.predict_proba, est.predict_log_proba]
    for method in methods:
        with pytest.raises(NotFittedError):
            method(X_OK)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_divergence_raises_and_keeps_finite_weights(solver):
    X, y = _adding(n=60)
    reg = LSTMRegressor(hidden_size=4, max_iter=5, learning_rate_init=1e30, solver=solver,
                        random_state=0)
    with pytest.raises(TrainingDivergedError, match="diverged.*learning_rate_init") as info:
        reg.fit(X, y)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FloatingPointError)
    # one mini-batch per epoch: the first step's loss is finite and its update is
    # applied; the next step finds a non-finite loss and stops training there
    assert (info.value.epoch, info.value.step) == (2, 1)
    # the estimator keeps the weights of the last step with a finite loss: here the
    # initial ones (the update of 1e30 that led to the overflow is discarded)
    initial = LSTMRegressor(hidden_size=4, max_iter=1, random_state=0, learning_rate_init=1e-9,
                            clip_grad_norm=None, solver=solver).fit(X, y)
    np.testing.assert_allclose(reg.network_.get_flat_params(),
                               initial.network_.get_flat_params(), atol=1e-6)
    assert reg.network_.all_finite()
    assert all(np.isfinite(p).all() for p in reg.network_.lstm.parameters().values())
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 1
    assert not hasattr(reg, "_optimizer")
    assert np.isfinite(reg.predict(X)).all()
    # training can go on from there with a sensible learning rate (a fresh optimizer)
    reg.set_params(learning_rate_init=1e-3).partial_fit(X, y)
    assert reg.network_.all_finite() and reg.n_iter_ == 2


def test_divergence_in_warm_start_keeps_earlier_epochs():
    X, y = _adding(n=60)
    reg = LSTMRegressor(hidden_size=4, max_iter=3, random_state=0, warm_start=True).fit(X, y)
    with pytest.raises(TrainingDivergedError):
        reg.set_params(learning_rate_init=1e30).fit(X, y)
    assert reg.network_.all_finite()
    assert np.isfinite(reg.predict(X)).all()
    assert 3 <= reg.n_iter_ <= 4 and len(reg.loss_curve_) == reg.n_iter_
