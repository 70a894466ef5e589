"""Calling a compiled numba function through its address (numlstm.kernels.cpu.indirect_call)."""

import sys
from typing import NamedTuple

import numpy as np
import pytest
from helpers import run_twice_with_one_cache
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from numlstm.kernels.cpu.indirect_call import (call_compiled, compiled_address,
                                               compiled_address_for, compiled_function,
                                               erase_type, stash, stashed_address, unstash)


@njit
def _scaled_rows(x, out, scale, fail, b0, b1):
    for b in range(b0, b1):
        total = 0.0
        for j in range(x.shape[1]):
            total += x[b, j]
        out[b] = scale * total
    if fail:
        raise ValueError("the callee failed")


@njit
def _returns_a_value(x):
    return x.sum()


@njit
def _call_once(address, arguments):
    call_compiled(address, arguments)


@njit(parallel=True)
def _call_per_chunk(address, x, out, scale, bounds):
    fail = bounds.shape[0] < 0
    for chunk in prange(bounds.shape[0] - 1):
        call_compiled(address, (x, out, scale, fail, bounds[chunk], bounds[chunk + 1]))


def test_the_callee_runs_with_the_arguments_given():
    x = np.arange(12.0).reshape(4, 3)
    out = np.zeros(4)
    arguments = (x, out, 2.0, False, 1, 3)
    _call_once(compiled_address(_scaled_rows, arguments), arguments)
    np.testing.assert_array_equal(out, [0.0, 2 * 12.0, 2 * 21.0, 0.0])


def test_each_thread_calls_its_slice():
    x = np.random.default_rng(0).standard_normal((10, 7))
    out = np.full(10, np.nan)
    address = compiled_address(_scaled_rows, (x, out, 0.5, False, 0, 0))
    _call_per_chunk(address, x, out, 0.5, np.array([0, 3, 10]))
    np.testing.assert_allclose(out, 0.5 * x.sum(axis=1), rtol=1e-12)


def test_the_address_follows_the_argument_types():
    x = np.ones((4, 6))
    out = np.zeros(4)
    contiguous = compiled_address(_scaled_rows, (x, out, 1.0, False, 0, 4))
    assert compiled_address(_scaled_rows, (x + 1, out, 3.0, True, 2, 3)) == contiguous
    strided = x[:, ::2]
    read_only = x.copy()
    read_only.flags.writeable = False
    single = x.astype(np.float32)
    others = {compiled_address(_scaled_rows, (array, out, 1.0, False, 0, 4))
              for array in (strided, read_only, single)}
    assert contiguous not in others and len(others) == 3
    # Each is a version compiled for its own types: it computes the right thing.
    for array in (strided, read_only, single):
        out[:] = 0.0
        arguments = (array, out, 1.0, False, 0, 4)
        _call_once(compiled_address(_scaled_rows, arguments), arguments)
        np.testing.assert_array_equal(out, np.asarray(array, float).sum(axis=1))


class _Rows(NamedTuple):
    x: np.ndarray
    out: np.ndarray


class _Totals(NamedTuple):
    total: np.ndarray
    count: np.ndarray


@njit
def _record_rows(rows, totals, scale, b0, b1):
    for b in range(b0, b1):
        rows.out[b] = scale * rows.x[b].sum()
        totals.total[0] += rows.out[b]
        totals.count[0] += 1


@njit(parallel=True)
def _record_per_chunk(address, rows, scale, partial_total, partial_count, bounds):
    # The records go to the loop one by one (numba passes a record's fields into prange,
    # not those of a record inside a tuple); one is built per thread inside it.
    for chunk in prange(bounds.shape[0] - 1):
        call_compiled(address, (rows, _Totals(partial_total[chunk], partial_count[chunk]),
                                scale, bounds[chunk], bounds[chunk + 1]))


def test_records_of_arrays_travel_to_the_callee():
    # The kernels of numlstm.kernels.cpu.recurrent take named tuples of arrays: the
    # address follows the types of their fields, and each thread gets its own record.
    x = np.random.default_rng(1).standard_normal((9, 4))
    rows = _Rows(x, np.zeros(9))
    partial_total, partial_count = np.zeros((2, 1)), np.zeros((2, 1), np.int64)
    arguments = (rows, _Totals(partial_total[0], partial_count[0]), 2.0, 0, 0)
    address = compiled_address(_record_rows, arguments)
    _record_per_chunk(address, rows, 2.0, partial_total, partial_count, np.array([0, 4, 9]))
    np.testing.assert_allclose(rows.out, 2.0 * x.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(partial_total[:, 0], [rows.out[:4].sum(), rows.out[4:].sum()],
                               rtol=1e-12)
    assert partial_count[:, 0].tolist() == [4, 5]
    single = _Rows(x.astype(np.float32), np.zeros(9, np.float32))
    assert compiled_address(_record_rows, (single,) + arguments[1:]) != address
    assert compiled_address(_record_rows, (_Rows(x + 1, np.ones(9)),) + arguments[1:]) == address


def test_compiled_function_is_the_version_for_the_arguments():
    x = np.random.default_rng(2).standard_normal((5, 3))
    rows = _Rows(x, np.zeros(5))
    arguments = (rows, _Totals(np.zeros(1), np.zeros(1, np.int64)), 3.0, 1, 4)
    compiled_function(_record_rows, arguments)(*arguments)
    np.testing.assert_allclose(rows.out, [0.0, *(3.0 * x[1:4].sum(axis=1)), 0.0], rtol=1e-12)
    assert compiled_function(_record_rows, arguments) is compiled_function(
        _record_rows, (_Rows(x + 1, np.ones(5)),) + arguments[1:])
    single = (_Rows(x.astype(np.float32), np.zeros(5, np.float32)),) + arguments[1:]
    assert compiled_function(_record_rows, single) is not compiled_function(
        _record_rows, arguments)
    # A version that returns a value has an entry point, but no address to call.
    assert compiled_function(_returns_a_value, (np.ones(3),))(np.ones(3)) == 3.0


def test_an_exception_in_the_callee_reaches_the_caller():
    x = np.ones((2, 2))
    arguments = (x, np.zeros(2), 1.0, True, 0, 2)
    with pytest.raises(ValueError, match="the callee failed"):
        _call_once(compiled_address(_scaled_rows, arguments), arguments)


def test_a_callee_that_returns_a_value_is_refused():
    with pytest.raises(TypeError, match="must return nothing"):
        compiled_address(_returns_a_value, (np.ones(3),))


def test_the_caller_loads_from_the_cache_in_a_new_process(tmp_path):
    # The caller's cached machine code holds no address: a new process, where the callee
    # lands elsewhere in memory, loads it and computes the right thing.
    first, second = run_twice_with_one_cache(tmp_path, "cached_callers", """
        import numpy as np
        from numba import njit, prange
        from numlstm.kernels.cpu.indirect_call import call_compiled, compiled_address

        @njit(cache=True)
        def rows(x, out, b0, b1):
            for b in range(b0, b1):
                out[b] = x[b].sum()

        @njit(parallel=True, cache=True)
        def per_chunk(address, arguments, bounds):
            for chunk in prange(bounds.shape[0] - 1):
                call_compiled(address, arguments + (bounds[chunk], bounds[chunk + 1]))

        x = np.arange(20.0).reshape(5, 4)
        out = np.zeros(5)
        per_chunk(compiled_address(rows, (x, out, 0, 0)), (x, out), np.array([0, 2, 5]))
        assert np.array_equal(out, x.sum(axis=1)), out
        print(sum(per_chunk.stats.cache_hits.values()), sum(rows.stats.cache_hits.values()))
    """)
    assert first == ["0", "0"]
    assert second == ["1", "1"]


# ------------------------------------------------------------ stashed arguments


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _stashed_rows(arguments, chunk, b0, b1):
    rows, totals, scale, twice = unstash(arguments)
    for b in range(b0, b1):
        row = rows.x[b]  # a view: numba would count a reference to x's memory here
        rows.out[b] = scale * row.sum() * (2.0 if twice else 1.0)
    totals.count[0] += chunk + 1


@njit
def _call_stashed(address, rows, totals, scale, twice, b0, b1):
    call_compiled(address, (stash((rows, totals, scale, twice)), 3, b0, b1))


@njit
def _call_stashed_untyped(address, rows, totals, scale, twice, b0, b1):
    # The pointer passed as a voidptr, as numlstm.kernels.cpu.parallel_rows does.
    call_compiled(address, (erase_type(stash((rows, totals, scale, twice))), 3, b0, b1))


@pytest.mark.parametrize("caller", [_call_stashed, _call_stashed_untyped])
def test_stashed_arguments_reach_the_callee_through_one_pointer(caller):
    x = np.random.default_rng(3).standard_normal((6, 4))
    rows, totals = _Rows(x, np.zeros(6)), _Totals(np.zeros(1), np.zeros(1, np.int64))
    address = stashed_address(_stashed_rows, (rows, totals, 0.5, True), (types.int64,) * 3)
    caller(address, rows, totals, 0.5, True, 1, 5)
    np.testing.assert_allclose(rows.out, [0.0, *(x[1:5].sum(axis=1)), 0.0], rtol=1e-12)
    assert totals.count[0] == 4
    # Looked up by the types of what is stashed, as compiled_address is.
    assert stashed_address(_stashed_rows, (_Rows(x + 1, np.ones(6)), totals, 2.0, False),
                           (types.int64,) * 3) == address
    single = _Rows(x.astype(np.float32), np.zeros(6, np.float32))
    assert stashed_address(_stashed_rows, (single, totals, 0.5, True),
                           (types.int64,) * 3) != address


def test_stashing_counts_no_references():
    # The stash borrows the caller's arrays: calls leave their reference counts as they
    # were (nothing leaked, nothing released twice).
    x = np.ones((4, 3))
    rows, totals = _Rows(x, np.zeros(4)), _Totals(np.zeros(1), np.zeros(1, np.int64))
    address = stashed_address(_stashed_rows, (rows, totals, 1.0, False), (types.int64,) * 3)
    before = sys.getrefcount(x), sys.getrefcount(rows.out)
    for _ in range(100):
        _call_stashed(address, rows, totals, 1.0, False, 0, 4)
    assert (sys.getrefcount(x), sys.getrefcount(rows.out)) == before
    np.testing.assert_array_equal(rows.out, 3.0)


@intrinsic
def _counts_references(typingctx, array):
    """Whether numba counts references to ``array``'s memory (its meminfo is set)."""
    def codegen(context, builder, signature, llvm_args):
        meminfo = context.make_array(array)(context, builder, value=llvm_args[0]).meminfo
        return builder.icmp_unsigned("!=", meminfo, cgutils.get_null_value(meminfo.type))

    return types.boolean(array), codegen


@njit
def _counting_inside_and_out(x):
    return _counts_references(x), _counts_references(unstash(stash((x, 1)))[0])


def test_stashed_arrays_carry_no_reference_count():
    # Threads that take views of the same arrays at every step would otherwise contend
    # for the cache line of each array's count.
    assert _counting_inside_and_out(np.ones(3)) == (True, False)


@njit
def _stash_a_list(values):
    return unstash(stash((values, 1.0)))


def test_stash_takes_only_arrays_numbers_and_records_of_them():
    with pytest.raises(TypingError):
        _stash_a_list([1.0, 2.0])


def test_compiled_address_for_types_refuses_a_callee_that_returns_a_value():
    assert compiled_address_for(_scaled_rows, (types.float64[:, ::1], types.float64[::1],
                                               types.float64, types.boolean, types.int64,
                                               types.int64)) == compiled_address(
        _scaled_rows, (np.ones((2, 2)), np.zeros(2), 1.0, False, 0, 2))
    with pytest.raises(TypeError, match="must return nothing"):
        compiled_address_for(_returns_a_value, (types.float64[::1],))
