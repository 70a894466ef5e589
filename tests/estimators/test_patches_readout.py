"""The estimators' ``patch_length`` and ``readout``: what the network is fed and reads, how
"auto" resolves, and that saving, loading, checkpoints and warm starts carry them."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import numlstm
from numlstm import LSTMClassifier, LSTMRegressor
from numlstm.estimators import _base
from numlstm.estimators._patches import auto_patch_length, patch_sequences
from helpers import fit_interrupted_then_resumed
from test_sklearn_checks import CHECKS_MAX_ITER

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 10, 2))
Y_CLASS = (X[:, :, 0].sum(axis=1) > 0).astype(int)
RAGGED = [RNG.normal(size=(n, 2)) for n in RNG.integers(3, 11, 24)]


def test_patch_sequences_lays_patches_side_by_side():
    x = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    patched, lengths = patch_sequences(x, np.array([5, 3]), 2)
    assert patched.shape == (2, 3, 6) and patched.flags.c_contiguous
    np.testing.assert_array_equal(patched[0, 0], np.concatenate([x[0, 0], x[0, 1]]))
    np.testing.assert_array_equal(patched[1, 1], np.concatenate([x[1, 2], x[1, 3]]))
    np.testing.assert_array_equal(patched[0, 2], np.concatenate([x[0, 4], np.zeros(3)]))
    np.testing.assert_array_equal(lengths, [3, 2])
    assert patch_sequences(x, None, 1)[0] is x


@pytest.mark.parametrize("n_timesteps, expected", [(1, 1), (64, 1), (65, 2), (128, 2),
                                                   (1460, 23)])
def test_auto_patch_length(n_timesteps, expected):
    assert auto_patch_length(n_timesteps, _base._AUTO_PATCH_STEPS) == expected
    est = LSTMClassifier(hidden_size=2, max_iter=1, random_state=0)
    est.fit(np.zeros((4, n_timesteps, 1)) + np.arange(4)[:, None, None], [0, 1, 0, 1])
    assert est.patch_length_ == expected
    # a patch of the channel, then its level and log-amplitude: "auto" scales each series,
    # since these differ in level only
    assert est.network_.lstm.input_size == expected + 2


@pytest.mark.parametrize("data", ["equal", "ragged"])
def test_the_network_reads_the_standardised_patches(data):
    Xd = X if data == "equal" else RAGGED
    est = LSTMClassifier(hidden_size=3, patch_length=3, readout="mean_max", max_iter=2,
                         input_scaling="channel", random_state=0).fit(Xd, Y_CLASS)
    assert est.patch_length_ == 3 and est.network_.lstm.input_size == 6
    series = list(X) if data == "equal" else RAGGED
    longest = max(len(s) for s in series)
    padded = np.zeros((len(series), longest, 2))
    for i, s in enumerate(series):
        padded[i, :len(s)] = (s - est._x_mean) / est._x_scale
    lengths = np.array([len(s) for s in series])
    patched, patched_lengths = patch_sequences(padded.astype(np.float32), lengths, 3)
    expected = est.network_.predict(patched, patched_lengths)
    np.testing.assert_allclose(est.predict_proba(Xd)[:, 1], expected[:, 0], rtol=1e-6)
    # one at a time, each at its own length: the same probabilities
    one_by_one = np.concatenate([est.predict_proba(s[None]) for s in series])
    np.testing.assert_allclose(one_by_one, est.predict_proba(Xd), rtol=1e-5, atol=1e-7)


def test_sequence_targets_read_every_step():
    y = [np.cumsum(s[:, 0]) for s in RAGGED]
    reg = LSTMRegressor(hidden_size=3, max_iter=1, readout="mean",
                        random_state=0).fit(RAGGED, y)
    assert reg.patch_length_ == 1 and reg.network_.readout == "last"
    with pytest.raises(ValueError, match="patch_length=2 groups steps"):
        LSTMRegressor(hidden_size=3, max_iter=1, patch_length=2).fit(RAGGED, y)


def test_warm_start_refuses_other_patches_or_readout():
    est = LSTMClassifier(hidden_size=3, patch_length=2, max_iter=1, warm_start=True,
                         random_state=0).fit(X, Y_CLASS)
    est.set_params(patch_length="auto")  # resolves to the fitted 2: continues
    est.fit(X, Y_CLASS)
    with pytest.raises(ValueError, match="patch_length_=2"):
        est.set_params(patch_length=5).fit(X, Y_CLASS)
    est.set_params(patch_length=2, readout="max")
    with pytest.raises(ValueError, match="readout"):
        est.fit(X, Y_CLASS)


def test_save_load_and_files_of_earlier_versions(tmp_path):
    est = LSTMRegressor(hidden_size=3, patch_length=4, readout="max", max_iter=2,
                        random_state=0).fit(RAGGED, X[:, 0, 0])
    path = tmp_path / "model.npz"
    numlstm.save(est, path)
    loaded = numlstm.load(path)
    assert loaded.patch_length_ == 4 and loaded.network_.readout == "max"
    assert np.array_equal(loaded.predict(RAGGED), est.predict(RAGGED))
    assert numlstm.io.read_header(path)["format_version"] == numlstm.io.FORMAT_VERSION == 6
    # A model of an earlier version has neither: it reads every step and its last state.
    del est.patch_length_
    del est.network_.__dict__["readout"]
    est.network_.__setstate__(est.network_.__getstate__())
    assert est.network_.readout == "last"


@pytest.mark.parametrize("params", [dict(patch_length=3, readout="mean_max"),
                                    dict(readout="mean")])
def test_checkpoint_resume_carries_them(tmp_path, monkeypatch, params):
    y = X[:, :, 1].mean(axis=1)
    common = dict(hidden_size=3, batch_size=8, max_iter=4, random_state=0, **params)
    reference = LSTMRegressor(**common).fit(X, y)
    resumed = fit_interrupted_then_resumed(
        lambda path: LSTMRegressor(**common, checkpoint=path), X, y, tmp_path / "run.ckpt",
        monkeypatch, call=8)  # in the third epoch (3 steps per epoch)
    assert resumed.patch_length_ == reference.patch_length_
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))


def test_pooled_readout_learns_a_pattern_anywhere_in_long_series():
    # The class is whether a short bump occurs anywhere in 300 steps of noise.
    rng = np.random.default_rng(1)
    n, T = 160, 300
    Xb = rng.normal(scale=0.3, size=(n, T, 1))
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        start = rng.integers(0, T - 5)
        Xb[i, start:start + 5, 0] += 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LSTMClassifier(readout="max", random_state=0, max_iter=60).fit(Xb[:120], y[:120])
    assert est.patch_length_ == 5
    assert est.score(Xb[120:], y[120:]) >= 0.9


# The new options under scikit-learn's estimator checks (max_iter capped as in
# tests/estimators/test_sklearn_checks.py). The checks' data are 2-D, so each series is
# as long as X has columns (up to a few dozen): patch_length=3 groups them.
@parametrize_with_checks(
    [LSTMClassifier(readout="mean_max", patch_length=3, max_iter=CHECKS_MAX_ITER),
     LSTMRegressor(readout="max", n_ensemble=2, max_iter=CHECKS_MAX_ITER)],
    expected_failed_checks=lambda est: {
        name: reason for name, reason in est._more_tags()["_xfail_checks"].items()
        # an ensemble has no partial_fit: the check has nothing to fail on
        if not (est.n_ensemble > 1 and "partial_fit" in name)})
def test_sklearn_checks_with_the_new_options(estimator, check):
    check(estimator)
