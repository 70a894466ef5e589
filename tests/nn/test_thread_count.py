"""Training does not depend on the number of CPU threads, bit for bit.

The CPU backend cuts a batch into one slice per thread for the sweep through time, and
shares the weight gradients (sums over every row and step) out by gate columns, so each
sum is added up in one order whatever the slicing. These tests slice the batch as 1, 2,
3 and 5 threads would (the backend's thread count, patched) and ask for exact equality,
then train estimators at one and two numba threads.
"""

import numba
import numpy as np
import pytest

import numlstm.nn.cpu_backend as cpu_backend
from numlstm import GRU, LSTM, RNN, LSTMClassifier, LSTMRegressor

LAYERS = {
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
    "rnn": (RNN, {}),
    "lstm-proj": (LSTM, dict(proj_size=5)),
    "lstm-peephole": (LSTM, dict(peephole=True)),
    "lstm-proj-peephole": (LSTM, dict(proj_size=3, peephole=True)),
}


def gradients_with_threads(layer, x, lengths, d_out, n_threads, monkeypatch):
    """The layer's weight and input gradients with the batch sliced for ``n_threads``."""
    with monkeypatch.context() as patch:
        patch.setattr(cpu_backend, "_thread_count", lambda: n_threads)
        layer.forward(x, lengths=lengths)
        grads, dx = layer.backward(d_out)
    return {name: np.array(value) for name, value in grads.items()}, dx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_size", [1, 20], ids=["narrow", "wide"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_gradients_do_not_depend_on_the_slicing(name, in_size, dtype, monkeypatch):
    # 37 rows, ragged: slices of unequal size, and 20 units: gate columns that end in a
    # partial panel.
    layer_class, options = LAYERS[name]
    layer = layer_class(in_size, 20, num_layers=2, bidirectional=True, dtype=dtype,
                        random_state=0, **options)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 9, in_size)).astype(dtype)
    lengths = rng.integers(1, 10, size=37)
    out, _ = layer.forward(x, lengths=lengths)
    d_out = rng.standard_normal(out.shape).astype(dtype)
    grads, dx = gradients_with_threads(layer, x, lengths, d_out, 1, monkeypatch)
    assert all(np.any(g != 0) for g in grads.values())
    for n_threads in (2, 3, 5):
        sliced_grads, sliced_dx = gradients_with_threads(layer, x, lengths, d_out, n_threads,
                                                         monkeypatch)
        np.testing.assert_array_equal(sliced_dx, dx)
        assert sliced_grads.keys() == grads.keys()
        for key in grads:
            np.testing.assert_array_equal(sliced_grads[key], grads[key], err_msg=key)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 7])
def test_the_shares_cover_every_row_and_gate_column_once(n_threads, monkeypatch):
    monkeypatch.setattr(cpu_backend, "_thread_count", lambda: n_threads)
    for batch in (1, 7, 8, 9, 64):
        for n_gate_cols in (1, 31, 32, 33, 80, 2048):
            shares = cpu_backend._gradient_shares(batch, n_gate_cols, 32)
            blocks, columns = shares.blocks, shares.columns
            # The blocks depend on the batch size only: two, or one for a small batch.
            assert len(blocks) - 1 == (2 if batch >= 8 else 1)
            assert blocks[0] == 0 and blocks[-1] == batch and np.all(np.diff(blocks) > 0)
            assert columns[0] == 0 and columns[-1] == n_gate_cols
            assert np.all(np.diff(columns) > 0) and np.all(columns[:-1] % 32 == 0)
            n_panels = -(-n_gate_cols // 32)
            assert shares.n_runs == len(columns) - 1 == min(n_panels, -(-n_threads // 2)
                                                            if batch >= 8 else n_threads)
            np.testing.assert_array_equal(shares.bounds,
                                          np.arange((len(blocks) - 1) * shares.n_runs + 1))
            # Each thread sums the rows it swept when the slices are the blocks.
            slices = cpu_backend._chunk_bounds(batch)
            assert shares.after_sweep == (shares.n_runs == 1
                                          and np.array_equal(slices, blocks))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_estimators_train_the_same_at_one_and_two_threads():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 30, 2)).astype(np.float32)
    labels = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    targets = X[:, :, 1].mean(axis=1)
    saved = numba.get_num_threads()
    results = []
    try:
        for n_threads in (1, 2):
            numba.set_num_threads(n_threads)
            classifier = LSTMClassifier(hidden_size=16, max_iter=8, random_state=0)
            regressor = LSTMRegressor(hidden_size=16, max_iter=8, bidirectional=True,
                                      cell="gru", random_state=0)
            with pytest.warns(Warning):  # not converged in 8 epochs
                classifier.fit(X, labels)
            with pytest.warns(Warning):
                regressor.fit(X, targets)
            results.append((classifier.loss_curve_, classifier.predict_proba(X),
                            regressor.loss_curve_, regressor.predict(X)))
    finally:
        numba.set_num_threads(saved)
    for one, two in zip(*results):
        np.testing.assert_array_equal(np.asarray(two), np.asarray(one))
