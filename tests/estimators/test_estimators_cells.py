"""The estimators with ``cell="gru"`` and ``cell="rnn"``, and saving every layer kind."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import numlstm
from numlstm import GRU, LSTM, RNN, LSTMClassifier, LSTMRegressor
from numlstm.datasets import make_adding_problem

from test_sklearn_checks import CHECKS_MAX_ITER


def _regression_data(n=96, seq_len=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, seq_len, 2))
    y = X[:, -3:, 0].sum(axis=1) - 0.5 * X[:, -1, 1]
    return X, y


@pytest.mark.parametrize("cell, layer_class", [("lstm", LSTM), ("gru", GRU), ("rnn", RNN)])
def test_regressor_builds_and_learns_with_each_cell(cell, layer_class):
    X, y = _regression_data()
    reg = LSTMRegressor(cell=cell, hidden_size=16, max_iter=60, n_iter_no_change=60,
                        learning_rate_init=0.01, random_state=0, dtype="float64")
    reg.fit(X, y)
    assert type(reg.network_.lstm) is layer_class
    assert reg.network_.lstm.cell == cell
    # A short-memory task every cell can learn: far better than predicting the mean.
    assert reg.score(X, y) > 0.8
    assert reg.predict(X).shape == (len(X),)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_classifier_with_other_cells(cell):
    X, y = _regression_data()
    labels = np.where(y > 0, "up", "down")
    clf = LSTMClassifier(cell=cell, hidden_size=8, max_iter=40, random_state=0)
    clf.fit(X, labels)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(X, labels) > 0.8
    assert set(clf.predict(X)) <= {"up", "down"}


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_bidirectional_sequence_output_and_ragged(cell):
    rng = np.random.default_rng(1)
    X = [rng.normal(size=(n, 2)) for n in (5, 9, 7, 3) * 6]
    Y = [np.cumsum(x[:, :1], axis=0) for x in X]
    reg = LSTMRegressor(cell=cell, hidden_size=8, bidirectional=True, num_layers=2,
                        max_iter=5, random_state=0).fit(X, Y)
    pred = reg.predict(X[:3])
    assert pred.shape == (3, 9, 1)  # padded to the longest; padded steps predict 0
    assert np.all(pred[0, 5:] == 0) and np.all(pred[2, 7:] == 0)
    assert np.all(np.isfinite(pred)) and np.any(pred[0, :5] != 0)


def test_cell_is_validated():
    X, y = _regression_data(n=8)
    with pytest.raises(ValueError, match="cell"):
        LSTMRegressor(cell="transformer").fit(X, y)


def test_warm_start_refuses_a_changed_cell():
    X, y = _regression_data(n=16)
    reg = LSTMRegressor(hidden_size=4, max_iter=2, random_state=0).fit(X, y)
    reg.set_params(cell="gru", warm_start=True)
    with pytest.raises(ValueError, match="cell"):
        reg.fit(X, y)


def test_same_seed_same_result_and_cells_differ():
    X, y = _regression_data(n=32)
    preds = {}
    for cell in ("lstm", "gru", "rnn"):
        a = LSTMRegressor(cell=cell, hidden_size=4, max_iter=3, random_state=0).fit(X, y)
        b = clone(a).fit(X, y)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
        preds[cell] = a.predict(X)
    assert not np.allclose(preds["lstm"], preds["gru"])
    assert not np.allclose(preds["gru"], preds["rnn"])


def test_gru_learns_the_adding_problem():
    # The gated cells carry the marked values over the sequence; the benchmark
    # benchmarks/long_memory.py measures this on longer sequences.
    X, y = make_adding_problem(1000, 20, random_state=0)
    X_test, y_test = make_adding_problem(300, 20, random_state=1)
    reg = LSTMRegressor(cell="gru", hidden_size=16, max_iter=25, n_iter_no_change=25,
                        learning_rate_init=0.01, random_state=0).fit(X, y)
    mse = np.mean((reg.predict(X_test) - y_test) ** 2)
    assert mse < 0.167 / 5, mse


def _round_trip(obj, folder):
    path = folder / "model.npz"
    numlstm.save(obj, path)
    return numlstm.load(path)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_save_load_estimators_with_other_cells(cell, tmp_path):
    X, y = _regression_data(n=24)
    reg = LSTMRegressor(cell=cell, hidden_size=5, num_layers=2, bidirectional=True,
                        max_iter=3, random_state=0).fit(X, y)
    loaded = _round_trip(reg, tmp_path)
    assert loaded.cell == cell and type(loaded.network_.lstm) is type(reg.network_.lstm)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("layer", [
    GRU(3, 5, num_layers=2, bidirectional=True, random_state=0),
    RNN(3, 5, nonlinearity="relu", dtype=np.float64, random_state=0),
    LSTM(3, 6, proj_size=2, num_layers=2, random_state=0),
    LSTM(3, 4, peephole=True, bidirectional=True, random_state=0),
], ids=["gru", "rnn-relu", "lstm-proj", "lstm-peephole"])
def test_save_load_layers(layer, tmp_path):
    loaded = _round_trip(layer, tmp_path)
    assert type(loaded) is type(layer)
    assert repr(loaded) == repr(layer)
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    out, states = layer.forward_states(x, requires_grad=False)
    out2, states2 = loaded.forward_states(x, requires_grad=False)
    np.testing.assert_array_equal(out, out2)
    for a, b in zip(states, states2):
        np.testing.assert_array_equal(a, b)


def test_layer_header_names_class_and_cell(tmp_path):
    numlstm.save(GRU(2, 3, random_state=0), tmp_path / "gru.npz")
    header = numlstm.io.read_header(tmp_path / "gru.npz")
    assert header["class"] == "GRU" and header["layer"]["cell"] == "gru"


# max_iter capped as in tests/estimators/test_sklearn_checks.py (see its docstring for why).
@parametrize_with_checks([LSTMRegressor(cell="gru", max_iter=CHECKS_MAX_ITER),
                          LSTMClassifier(cell="rnn", max_iter=CHECKS_MAX_ITER)],
                         expected_failed_checks=lambda est: est._more_tags()["_xfail_checks"])
def test_sklearn_checks_with_other_cells(estimator, check):
    check(estimator)
