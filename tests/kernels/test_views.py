"""Flat views of C-contiguous arrays (numlstm.kernels.cpu.views)."""

import gc
import sys

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numlstm.kernels.cpu.views import borrowed, flat, flat_bits


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


@njit
def _rows_of_borrowed(array, out):
    # Views of a borrowed array, row by row, as the sweeps take them; written through.
    source = borrowed(array)
    target = borrowed(out)
    for i in range(source.shape[0]):
        row = source[i]
        dest = target[i]
        for j in range(row.shape[0]):
            dest[j] = 2 * row[j]


@njit
def _strides_of_borrowed(array):
    view = borrowed(array)
    return view.shape, view.strides, view[1, 2]


def test_borrowed_is_the_same_array_without_a_reference():
    array = np.arange(12.0).reshape(3, 4)
    out = np.zeros_like(array)
    count = sys.getrefcount(array)
    for _ in range(100):
        _rows_of_borrowed(array, out)
    np.testing.assert_array_equal(out, 2 * array)
    assert sys.getrefcount(array) == count
    # Shape and strides carry over, also for a strided view.
    strided = np.arange(40.0).reshape(5, 8)[::2, 1::3]
    shape, strides, element = _strides_of_borrowed(strided)
    assert shape == strided.shape and strides == strided.strides
    assert element == strided[1, 2]
