"""The estimators' ``input_dropout`` (on the network's input) and ``output_dropout`` (on
what the output layer reads): what "auto" gives, that they act in training only, and
that saved models and warm starts carry them."""

import numpy as np
import pytest

from numlstm import LSTMClassifier, LSTMRegressor, load, save

#: The rate a fitted estimator's network uses, per option.
RATE_OF = {"input_dropout": lambda est: est.network_.lstm.input_dropout,
           "output_dropout": lambda est: est.network_.output_dropout}
OPTIONS = sorted(RATE_OF)


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12, 2))
    return X, (X[:, :, 0].mean(axis=1) > 0).astype(int), X[:, :, 1].mean(axis=1)


def fitted(estimator_class, **params):
    X, labels, targets = data()
    y = labels if estimator_class is LSTMClassifier else targets
    est = estimator_class(hidden_size=4, max_iter=3, random_state=0, **params)
    with pytest.warns(Warning):  # not converged
        return est.fit(X, y)


@pytest.mark.parametrize("option, estimator_class, params, rate", [
    ("input_dropout", LSTMClassifier, {}, 0.1),
    ("input_dropout", LSTMRegressor, {}, 0.0),
    ("input_dropout", LSTMClassifier, {"solver": "lbfgs"}, 0.0),
    ("input_dropout", LSTMClassifier, {"input_dropout": 0.0}, 0.0),
    ("input_dropout", LSTMRegressor, {"input_dropout": 0.3}, 0.3),
    ("output_dropout", LSTMClassifier, {}, 0.1),
    ("output_dropout", LSTMRegressor, {}, 0.1),
    ("output_dropout", LSTMClassifier, {"solver": "lbfgs"}, 0.0),
    ("output_dropout", LSTMRegressor, {"solver": "sgd"}, 0.1),
    ("output_dropout", LSTMClassifier, {"output_dropout": 0.0}, 0.0),
    ("output_dropout", LSTMRegressor, {"output_dropout": 0.3}, 0.3),
])
def test_auto_resolves_per_task_and_solver(option, estimator_class, params, rate):
    assert RATE_OF[option](fitted(estimator_class, **params)) == rate


def test_auto_gives_no_output_dropout_for_sequence_targets():
    X, _, _ = data()
    est = LSTMRegressor(hidden_size=4, max_iter=2, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, X[:, :, :1].cumsum(axis=1))
    assert est.network_.sequence_output and est.network_.output_dropout == 0.0


@pytest.mark.parametrize("option", OPTIONS)
def test_it_changes_training_not_prediction(option):
    fits = {rate: fitted(LSTMClassifier, **{option: rate}) for rate in (0.0, 0.5)}
    # The same initial weights and batches: only the masks differ.
    assert fits[0.0].loss_curve_ != fits[0.5].loss_curve_
    clf = fits[0.5]
    X, _, _ = data()
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    assert clf.network_.lstm.training is True  # predicting switched it off and back


@pytest.mark.parametrize("option", OPTIONS)
def test_lbfgs_refuses_an_explicit_rate(option):
    X, labels, _ = data()
    with pytest.raises(ValueError, match=option):
        LSTMClassifier(solver="lbfgs", **{option: 0.2}).fit(X, labels)


@pytest.mark.parametrize("option", OPTIONS)
def test_a_saved_classifier_goes_on_with_its_masks(tmp_path, option):
    X, labels, _ = data()
    # Only this option drops anything: the masks compared are its own.
    other = {name: 0.0 for name in OPTIONS if name != option}
    clf = LSTMClassifier(hidden_size=4, max_iter=2, warm_start=True, random_state=0,
                         **other)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    save(clf, tmp_path / "clf.npz")
    again = load(tmp_path / "clf.npz")
    assert getattr(again, option) == "auto" and RATE_OF[option](again) == 0.1
    with pytest.warns(Warning):
        clf.fit(X, labels)
    with pytest.warns(Warning):
        again.fit(X, labels)
    # The layer's random stream, which draws both kinds of mask, was saved: the same
    # masks, so the same weights.
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("option", OPTIONS)
def test_a_warm_start_takes_a_new_rate(option):
    X, labels, _ = data()
    clf = LSTMClassifier(hidden_size=4, max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, labels)
    clf.set_params(**{option: 0.25})
    with pytest.warns(Warning):
        clf.fit(X, labels)
    assert RATE_OF[option](clf) == 0.25
