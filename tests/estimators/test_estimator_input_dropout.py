"""The estimators' ``input_dropout``: what "auto" gives, and that it acts in training only."""

import numpy as np
import pytest

from numlstm import LSTMClassifier, LSTMRegressor, load, save


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12, 2))
    return X, (X[:, :, 0].mean(axis=1) > 0).astype(int), X[:, :, 1].mean(axis=1)


@pytest.mark.parametrize("estimator_class, params, rate", [
    (LSTMClassifier, {}, 0.1),
    (LSTMRegressor, {}, 0.0),
    (LSTMClassifier, {"solver": "lbfgs"}, 0.0),
    (LSTMClassifier, {"input_dropout": 0.0}, 0.0),
    (LSTMRegressor, {"input_dropout": 0.3}, 0.3),
])
def test_auto_resolves_per_task_and_solver(estimator_class, params, rate):
    X, labels, targets = data()
    y = labels if estimator_class is LSTMClassifier else targets
    est = estimator_class(hidden_size=4, max_iter=3, random_state=0, **params)
    with pytest.warns(Warning):  # not converged
        est.fit(X, y)
    assert est.network_.lstm.input_dropout == rate


def test_it_changes_training_not_prediction():
    X, labels, _ = data()
    fits = {}
    for rate in (0.0, 0.5):
        clf = LSTMClassifier(hidden_size=4, max_iter=3, input_dropout=rate, random_state=0)
        with pytest.warns(Warning):
            fits[rate] = clf.fit(X, labels)
    assert fits[0.0].loss_curve_ != fits[0.5].loss_curve_
    clf = fits[0.5]
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    assert clf.network_.lstm.training is True  # predicting switched it off and back


def test_lbfgs_refuses_an_explicit_rate():
    X, labels, _ = data()
    with pytest.raises(ValueError, match="input_dropout"):
        LSTMClassifier(solver="lbfgs", input_dropout=0.2).fit(X, labels)


def test_a_saved_classifier_goes_on_with_its_masks(tmp_path):
    X, labels, _ = data()
    clf = LSTMClassifier(hidden_size=4, max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    save(clf, tmp_path / "clf.npz")
    again = load(tmp_path / "clf.npz")
    assert again.input_dropout == "auto" and again.network_.lstm.input_dropout == 0.1
    with pytest.warns(Warning):
        clf.fit(X, labels)
    with pytest.warns(Warning):
        again.fit(X, labels)
    # The layer's random stream was saved: the same masks, so the same weights.
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
