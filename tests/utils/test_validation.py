"""Tests of numlstm._utils.validation: conversion of sequences and targets, error messages."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning

from numlstm._utils.validation import (check_classification_labels, check_n_features,
                                       check_regression_targets, check_sequences, valid_steps_mask)


def test_3d_passes_through_with_dtype():
    X = np.arange(24).reshape(2, 3, 4)
    X3, lengths = check_sequences(X, dtype=np.float32)
    assert X3.dtype == np.float32 and X3.shape == (2, 3, 4) and lengths is None
    assert X3.flags.c_contiguous
    np.testing.assert_array_equal(X3, X)


def test_2d_is_univariate_series():
    X3, lengths = check_sequences([[1, 2, 3], [4, 5, 6]])
    assert X3.shape == (2, 3, 1) and lengths is None
    np.testing.assert_array_equal(X3[1, :, 0], [4, 5, 6])


def test_ragged_list_is_zero_padded_with_lengths():
    seqs = [np.ones((3, 2)), 2 * np.ones((5, 2)), 3 * np.ones((1, 2))]
    X3, lengths = check_sequences(seqs)
    assert X3.shape == (3, 5, 2)
    np.testing.assert_array_equal(lengths, [3, 5, 1])
    assert (X3[0, 3:] == 0).all() and (X3[2, 1:] == 0).all()
    assert (X3[1] == 2).all()


def test_ragged_univariate_lists():
    X3, lengths = check_sequences([[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]])
    assert X3.shape == (3, 3, 1)
    np.testing.assert_array_equal(lengths, [2, 1, 3])


def test_list_of_equal_length_arrays_is_regular():
    X3, lengths = check_sequences([np.zeros((4, 2)), np.ones((4, 2))])
    assert X3.shape == (2, 4, 2) and lengths is None


@pytest.mark.parametrize("X, exc, match", [
    (None, ValueError, "X is None"),
    (np.zeros(5), ValueError, "X must be 3-D"),
    (np.zeros((2, 2, 2, 2)), ValueError, "X must be 3-D"),
    (np.zeros((0, 3)), ValueError, r"X: Found array with 0 sample"),
    (np.zeros((3, 0)), ValueError, r"0 feature\(s\) \(shape=\(3, 0\)\)"),
    (np.zeros((3, 0, 2)), ValueError, "X has 0 timesteps"),
    (np.zeros((3, 2, 0)), ValueError, "X: Found array with 0 feature"),
    (np.array([[1.0, np.nan]]), ValueError, "Input X contains NaN"),
    (np.array([[1.0, np.inf]]), ValueError, "Input X contains infinity"),
    (np.array([["a", "b"]]), ValueError, "X: could not convert"),
    (np.array([[1, {"a": 1}]], dtype=object), TypeError, "X: .*argument must be"),
    (np.array([[1 + 1j]]), ValueError, "X: Complex data not supported"),
    (sp.csr_matrix(np.ones((2, 2))), TypeError, "X"),
    ([np.ones((2, 2)), np.ones((3, 3))], ValueError, r"X\[1\] has 3 features"),
    ([np.ones((2, 2)), np.ones((0, 2))], ValueError, r"X\[1\] has 0 timesteps"),
    ([np.ones(2), []], ValueError, r"X\[1\] has 0 timesteps"),
    ([np.ones((2, 2)), np.ones((3, 2, 1))], ValueError, r"X\[1\] must be a 1-D"),
    ([np.ones((2, 1)), np.array([[np.nan]])], ValueError, r"X\[1\] contains NaN"),
])
def test_bad_sequences(X, exc, match):
    with pytest.raises(exc, match=match):
        check_sequences(X)


def test_valid_steps_mask():
    np.testing.assert_array_equal(valid_steps_mask(2, 3, None), np.ones((2, 3), bool))
    np.testing.assert_array_equal(valid_steps_mask(2, 3, np.array([1, 3])),
                                  [[True, False, False], [True, True, True]])


def test_regression_targets_shapes():
    assert check_regression_targets([1, 2, 3], 3, n_timesteps=4).shape == (3,)
    assert check_regression_targets(np.ones((3, 2)), 3, n_timesteps=4).shape == (3, 2)
    y3 = check_regression_targets(np.ones((3, 4, 2)), 3, n_timesteps=4,
                                  lengths=np.array([4, 2, 1]))
    assert y3.shape == (3, 4, 2)
    assert (y3[1, 2:] == 0).all() and (y3[2, 1:] == 0).all() and (y3[0] == 1).all()


def test_regression_targets_ragged_list():
    y = [np.ones((2, 1)), np.ones((3, 1)), np.ones((1, 1))]
    y3 = check_regression_targets(y, 3, n_timesteps=3, lengths=np.array([2, 3, 1]))
    assert y3.shape == (3, 3, 1)
    with pytest.raises(ValueError, match=r"y\[0\] has 2 timesteps but X\[0\] has 3"):
        check_regression_targets(y, 3, n_timesteps=3, lengths=np.array([3, 3, 1]))


@pytest.mark.parametrize("y, exc, match", [
    (None, ValueError, "requires y to be passed, but the target y is None"),
    ([1.0, np.nan, 2.0], ValueError, "Input y contains NaN"),
    ([1.0, np.inf, 2.0], ValueError, "Input y contains infinity"),
    (["a", "b", "c"], ValueError, "y: could not convert"),
    ([1.0, 2.0], ValueError, "inconsistent numbers of samples: X has 3 sample"),
    (np.ones((3, 5, 1)), ValueError, "y has 5 timesteps but X has 4"),
    (np.ones((3, 4, 1, 1)), ValueError, "y must be 1-D"),
    (np.ones((3, 4, 0)), ValueError, "y has 0 outputs"),
    ([], ValueError, "y: Found array with 0 sample"),
])
def test_bad_regression_targets(y, exc, match):
    with pytest.raises(exc, match=match):
        check_regression_targets(y, 3, n_timesteps=4)


def test_classification_labels():
    y = check_classification_labels(["a", "b", "a"], 3)
    assert y.shape == (3,)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        y = check_classification_labels(np.array([[0], [1], [0]]), 3)
    assert y.shape == (3,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_classification_labels([0, 1, 2], 3)


@pytest.mark.parametrize("y, match", [
    (None, "requires y to be passed"),
    ([0.5, 1.5, 2.5], "Unknown label type"),
    ([0.0, np.nan, 1.0], "Input y contains NaN"),
    (np.ones((3, 2)), "y should be a 1d array"),
    ([0, 1], "inconsistent numbers of samples"),
    ([], "y is empty"),
])
def test_bad_classification_labels(y, match):
    with pytest.raises(ValueError, match=match):
        check_classification_labels(y, 3)


def test_check_n_features():
    check_n_features(3, 3, "Est")
    with pytest.raises(ValueError, match="X has 2 features, but Est is expecting 3 features"):
        check_n_features(2, 3, "Est")


def test_sequences_of_different_lengths_in_an_object_array_or_series_are_padded():
    pd = pytest.importorskip("pandas")
    items = [np.arange(3.0), np.arange(2.0)]
    expected, expected_lengths = check_sequences(items)
    for X in (np.array(items, dtype=object), pd.Series(items)):
        X3, lengths = check_sequences(X)
        np.testing.assert_array_equal(X3, expected)
        np.testing.assert_array_equal(lengths, expected_lengths)


def test_a_ragged_item_of_a_ragged_list_is_named():
    with pytest.raises(ValueError, match=r"^X\[0\]: "):
        check_sequences([[[1.0, 2.0], [3.0]], [[1.0, 2.0]]])
