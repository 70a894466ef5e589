"""Tests of numlstm.datasets: the adding problem and the copy task."""

import numpy as np
import pytest

from numlstm.datasets import make_adding_problem, make_copy_task


def test_adding_problem_structure():
    X, y = make_adding_problem(n_samples=300, seq_len=40, random_state=0)
    assert X.shape == (300, 40, 2) and y.shape == (300,)
    values, markers = X[:, :, 0], X[:, :, 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2)
    # one marker in each half
    np.testing.assert_array_equal(markers[:, :20].sum(axis=1), 1)
    np.testing.assert_allclose(y, (values * markers).sum(axis=1))


def test_adding_problem_baseline_mse_is_one_sixth():
    _, y = make_adding_problem(n_samples=20000, seq_len=10, random_state=1)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)


def test_adding_problem_seeded():
    a = make_adding_problem(50, 20, random_state=3)
    b = make_adding_problem(50, 20, random_state=3)
    c = make_adding_problem(50, 20, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    rs = np.random.RandomState(0)
    assert make_adding_problem(5, 4, random_state=rs)[0].shape == (5, 4, 2)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n_samples": 0}, ValueError, "n_samples"),
    ({"seq_len": 1}, ValueError, "seq_len"),
    ({"seq_len": 2.5}, TypeError, "seq_len"),
])
def test_adding_problem_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_adding_problem(**kwargs)


def test_copy_task_structure():
    copy_len, delay, n_symbols = 5, 7, 4
    X, y = make_copy_task(n_samples=30, copy_len=copy_len, delay=delay, n_symbols=n_symbols,
                          random_state=0)
    T = 2 * copy_len + delay
    assert X.shape == (30, T, n_symbols + 2) and y.shape == (30, T)
    np.testing.assert_array_equal(X.sum(axis=2), 1)  # one-hot
    codes = X.argmax(axis=2)
    symbols = codes[:, :copy_len]
    assert ((symbols >= 1) & (symbols <= n_symbols)).all()
    np.testing.assert_array_equal(codes[:, copy_len + delay - 1], n_symbols + 1)  # go marker
    np.testing.assert_array_equal(codes[:, copy_len:copy_len + delay - 1], 0)
    np.testing.assert_array_equal(y[:, :T - copy_len], 0)
    np.testing.assert_array_equal(y[:, T - copy_len:], symbols)


def test_copy_task_one_hot_targets_and_seed():
    X1, y1 = make_copy_task(10, copy_len=3, delay=2, n_symbols=5, one_hot_targets=True,
                            random_state=2)
    X2, y2 = make_copy_task(10, copy_len=3, delay=2, n_symbols=5, random_state=2)
    np.testing.assert_array_equal(X1, X2)
    assert y1.shape == (10, 8, 6)
    np.testing.assert_array_equal(y1.argmax(axis=2), y2)


def test_copy_task_bad_arguments():
    with pytest.raises(ValueError, match="delay"):
        make_copy_task(delay=0)
    with pytest.raises(TypeError, match="copy_len"):
        make_copy_task(copy_len="3")
