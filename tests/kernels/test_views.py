"""Flat views of C-contiguous arrays (numlstm.kernels.cpu.views)."""

import gc
import sys

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numlstm.kernels.cpu.views import flat, flat_bits


@njit
def _flat(array):
    return flat(array).copy()


@njit
def _flat_bits(array):
    return flat_bits(array).copy()


@njit
def _write_through(array):
    values = flat(array)
    for i in range(values.shape[0]):
        values[i] = i


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_is_every_element_in_order(dtype):
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    np.testing.assert_array_equal(_flat(array), array.reshape(-1))
    np.testing.assert_array_equal(_flat(array[1]), array[1].reshape(-1))
    assert _flat(np.empty((3, 0), dtype)).shape == (0,)
    out = np.zeros((2, 5), dtype)
    _write_through(out)
    np.testing.assert_array_equal(out, np.arange(10).reshape(2, 5))


@pytest.mark.parametrize("dtype, bits", [(np.float32, np.int32), (np.float64, np.int64)])
def test_flat_bits_tells_signed_zeros_and_nans_apart(dtype, bits):
    array = np.array([[0.0, -0.0], [np.nan, 1.5]], dtype)
    got = _flat_bits(array)
    assert got.dtype == bits
    np.testing.assert_array_equal(got, array.reshape(-1).view(bits))
    assert got[0] != got[1]


def test_views_need_c_contiguous_float_arrays():
    with pytest.raises(TypingError):
        _flat(np.ones((3, 4))[:, ::2])
    with pytest.raises(TypingError):
        _flat_bits(np.ones(3, np.int64))


@njit
def _escape(array):
    return flat(array)


def test_a_view_keeps_its_memory_alive_and_releases_it():
    array = np.arange(12.0).reshape(3, 4)
    count = sys.getrefcount(array)
    view = _escape(array)
    assert sys.getrefcount(array) > count  # through the view's memory manager
    del array
    gc.collect()
    np.ones(10**5)  # memory freed too early would be reused here
    np.testing.assert_array_equal(view, np.arange(12.0))
    array = np.zeros(4)
    count = sys.getrefcount(array)
    for _ in range(100):
        _escape(array)
    assert sys.getrefcount(array) == count
