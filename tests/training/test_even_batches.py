"""An epoch is cut into mini-batches of equal size (within one row)."""

import numpy as np
import pytest

from numlstm import LSTMRegressor
from numlstm.training.stochastic import even_batches


@pytest.mark.parametrize("n", [1, 2, 3, 34, 35, 64, 65, 100, 127, 128, 129, 1000])
@pytest.mark.parametrize("batch_size", [1, 3, 16, 32, 64])
def test_batches_cover_every_row_once_with_sizes_within_one(n, batch_size):
    batches = list(even_batches(n, batch_size))
    assert len(batches) == -(-n // batch_size)
    rows = np.concatenate([np.arange(n)[b] for b in batches])
    np.testing.assert_array_equal(rows, np.arange(n))
    sizes = [b.stop - b.start for b in batches]
    assert max(sizes) <= batch_size
    assert max(sizes) - min(sizes) <= 1


def test_no_remainder_batch_of_a_few_rows():
    assert sorted(b.stop - b.start for b in even_batches(35, 32)) == [17, 18]
    assert sorted(b.stop - b.start for b in even_batches(65, 64)) == [32, 33]


def test_a_fit_steps_on_batches_of_equal_size(monkeypatch):
    # Every step of a fit sees one of the equal batches: 35 rows in batches of at most
    # 32 make steps of 18 and 17 rows, never one of 3.
    from numlstm.training import trainer

    sizes = []
    original = trainer.HostTrainer.step

    def step(self, idx):
        sizes.append(len(idx))
        return original(self, idx)

    monkeypatch.setattr(trainer.HostTrainer, "step", step)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(35, 4, 2)), rng.normal(size=35)
    LSTMRegressor(hidden_size=4, batch_size=32, max_iter=3, random_state=0).fit(X, y)
    assert sorted(set(sizes)) == [17, 18]
    assert len(sizes) == 6
