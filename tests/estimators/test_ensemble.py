"""``n_ensemble``: several networks trained with their own seeds, predictions averaged."""

import numpy as np
import pytest

import numlstm
from numlstm import LSTMClassifier, LSTMRegressor
from helpers import fit_interrupted_then_resumed, interrupt_at

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 8, 2))
Y_CLASS = np.digitize(X[:, :, 0].sum(axis=1), [-1.0, 1.0])
Y_REG = X[:, :, 1].mean(axis=1)


def _inputs(est, X):
    return est._transform_input(np.asarray(X, dtype=np.float64), None)


def test_members_have_their_own_seeds_and_predictions_are_their_mean():
    est = LSTMClassifier(hidden_size=3, n_ensemble=3, max_iter=3,
                         random_state=0).fit(X, Y_CLASS)
    members = est.networks_
    assert len(members) == 3 and members[0] is est.network_
    flats = [m.get_flat_params() for m in members]
    assert not np.array_equal(flats[0], flats[1]) and not np.array_equal(flats[1], flats[2])
    expected = np.mean([m.predict(*_inputs(est, X)) for m in members], axis=0)
    np.testing.assert_allclose(est.predict_proba(X), expected, rtol=1e-12)
    assert np.array_equal(est.predict(X), est.classes_[expected.argmax(axis=1)])
    # the training record is the last member's, network_
    assert len(est.loss_curve_) == est.n_iter_ <= 3


def test_regressor_averages_predictions_and_one_member_is_the_plain_fit():
    ens = LSTMRegressor(hidden_size=3, n_ensemble=2, max_iter=3, random_state=1).fit(X, Y_REG)
    single = [m.predict(*_inputs(ens, X))[:, 0] * ens._y_scale[0] + ens._y_mean[0]
              for m in ens.networks_]
    np.testing.assert_allclose(ens.predict(X), np.mean(single, axis=0), rtol=1e-10)
    one = LSTMRegressor(hidden_size=3, max_iter=3, random_state=1).fit(X, Y_REG)
    also_one = LSTMRegressor(hidden_size=3, n_ensemble=1, max_iter=3,
                             random_state=1).fit(X, Y_REG)
    assert len(one.networks_) == 1
    assert np.array_equal(one.predict(X), also_one.predict(X))


def test_save_load_keeps_every_member(tmp_path):
    est = LSTMClassifier(hidden_size=3, n_ensemble=3, max_iter=2,
                         random_state=0).fit(X, Y_CLASS)
    numlstm.save(est, tmp_path / "m.npz")
    loaded = numlstm.load(tmp_path / "m.npz")
    assert len(loaded.networks_) == 3
    assert np.array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_incremental_training_needs_one_network():
    est = LSTMClassifier(hidden_size=3, n_ensemble=2, max_iter=2,
                         random_state=0).fit(X, Y_CLASS)
    assert not hasattr(est, "partial_fit")  # as for solver="lbfgs"
    with pytest.raises(AttributeError, match="partial_fit") as info:
        est.partial_fit(X, Y_CLASS)
    assert "Use n_ensemble=1 to train incrementally" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="warm_start=True continues"):
        est.set_params(warm_start=True).fit(X, Y_CLASS)
    # a fitted ensemble refuses partial_fit even when n_ensemble was changed since
    with pytest.raises(ValueError, match="partial_fit continues the training of one"):
        est.set_params(n_ensemble=1, warm_start=False).partial_fit(X, Y_CLASS)


def test_checkpoint_resume_in_a_later_member_equals_the_uninterrupted_fit(tmp_path,
                                                                          monkeypatch):
    common = dict(hidden_size=3, batch_size=10, max_iter=3, n_ensemble=3, random_state=0)
    reference = LSTMRegressor(**common).fit(X, Y_REG)
    resumed = fit_interrupted_then_resumed(
        lambda path: LSTMRegressor(**common, checkpoint=path), X, Y_REG,
        tmp_path / "run.ckpt", monkeypatch, call=3 * 3 + 5)  # epoch 2 of the second member
    assert len(resumed.networks_) == 3
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))


def test_resume_before_a_members_first_checkpoint_keeps_the_finished_members(
        tmp_path, monkeypatch):
    """Interrupted in the third member before any checkpoint of its own: the resumed fit
    trains the third member only (it used to start the whole ensemble again)."""
    common = dict(hidden_size=3, batch_size=10, max_iter=3, n_ensemble=3, random_state=0,
                  checkpoint=tmp_path / "run.ckpt", checkpoint_every=100)
    reference = LSTMRegressor(**{**common, "checkpoint": None}).fit(X, Y_REG)
    interrupt_at(monkeypatch, call=2 * 9 + 5)  # 9 steps per member: epoch 2 of the third
    with pytest.raises(KeyboardInterrupt):
        LSTMRegressor(**common).fit(X, Y_REG)
    monkeypatch.undo()
    calls = interrupt_at(monkeypatch, call=10**9)
    resumed = LSTMRegressor(**common).fit(X, Y_REG)
    assert calls[0] == 9  # the third member's steps
    assert len(resumed.networks_) == 3
    for mine, theirs in zip(resumed.networks_, reference.networks_):
        np.testing.assert_array_equal(mine.get_flat_params(), theirs.get_flat_params())
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))
    # finished now: the next fit is a new one
    calls[0] = 0
    LSTMRegressor(**common).fit(X, Y_REG)
    assert calls[0] == 27
