"""The estimators' ``output_dropout``: what "auto" gives, that it acts in training only,
and that saved models and warm starts carry it."""

import numpy as np
import pytest

from numlstm import LSTMClassifier, LSTMRegressor, load, save


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12, 2))
    return X, (X[:, :, 0].mean(axis=1) > 0).astype(int), X[:, :, 1].mean(axis=1)


@pytest.mark.parametrize("estimator_class, params, rate", [
    (LSTMClassifier, {}, 0.1),
    (LSTMRegressor, {}, 0.1),
    (LSTMClassifier, {"solver": "lbfgs"}, 0.0),
    (LSTMRegressor, {"solver": "sgd"}, 0.1),
    (LSTMClassifier, {"output_dropout": 0.0}, 0.0),
    (LSTMRegressor, {"output_dropout": 0.3}, 0.3),
])
def test_auto_resolves_per_solver(estimator_class, params, rate):
    X, labels, targets = data()
    y = labels if estimator_class is LSTMClassifier else targets
    est = estimator_class(hidden_size=4, max_iter=3, random_state=0, **params)
    with pytest.warns(Warning):  # not converged
        est.fit(X, y)
    assert est.network_.output_dropout == rate


def test_auto_gives_none_for_sequence_targets():
    X, _, _ = data()
    est = LSTMRegressor(hidden_size=4, max_iter=2, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, X[:, :, :1].cumsum(axis=1))
    assert est.network_.sequence_output and est.network_.output_dropout == 0.0


def test_it_changes_training_not_prediction():
    X, labels, _ = data()
    fits = {}
    for rate in (0.0, 0.5):
        clf = LSTMClassifier(hidden_size=4, max_iter=3, output_dropout=rate, random_state=0)
        with pytest.warns(Warning):
            fits[rate] = clf.fit(X, labels)
    # The same initial weights and batches: only the masks differ.
    assert fits[0.0].loss_curve_ != fits[0.5].loss_curve_
    clf = fits[0.5]
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    assert clf.network_.lstm.training is True  # predicting switched it off and back


def test_lbfgs_refuses_an_explicit_rate():
    X, labels, _ = data()
    with pytest.raises(ValueError, match="output_dropout"):
        LSTMClassifier(solver="lbfgs", output_dropout=0.2).fit(X, labels)


def test_a_saved_regressor_goes_on_with_its_masks(tmp_path):
    X, _, targets = data()
    reg = LSTMRegressor(hidden_size=4, max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(Warning):
        reg.fit(X, targets)
    save(reg, tmp_path / "reg.npz")
    again = load(tmp_path / "reg.npz")
    assert again.output_dropout == "auto" and again.network_.output_dropout == 0.1
    with pytest.warns(Warning):
        reg.fit(X, targets)
    with pytest.warns(Warning):
        again.fit(X, targets)
    # The layer's random stream, which draws these masks too, was saved: the same
    # masks, so the same weights.
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))


def test_a_warm_start_takes_a_new_rate():
    X, labels, _ = data()
    clf = LSTMClassifier(hidden_size=4, max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    clf.set_params(output_dropout=0.0)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    assert clf.network_.output_dropout == 0.0
