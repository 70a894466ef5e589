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


@pytest.mark.parametrize("n, batch_size", [(64, 64), (65, 64), (67, 64), (100, 64), (35, 32),
                                           (40, 64)])
def test_auto_penalty_per_step_is_the_same_however_the_epoch_is_cut(
        monkeypatch, n, batch_size):
    # Each step divides alpha by its batch's rows; "auto" takes the mean batch, so every
    # step penalises 0.05 * ||W||^2 / n on its mean loss (65 rows cut 33 and 32 would
    # otherwise get twice the penalty of 64 in one batch).
    from numlstm.nn.network import LSTMNetwork

    seen = []
    original = LSTMNetwork.loss_and_gradient

    def loss_and_gradient(self, X, Y, lengths=None, alpha=0.0, training=True):
        seen.append(alpha / X.shape[0])
        return original(self, X, Y, lengths, alpha, training)

    monkeypatch.setattr(LSTMNetwork, "loss_and_gradient", loss_and_gradient)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 3, 2)), rng.normal(size=n)
    LSTMRegressor(hidden_size=4, batch_size=batch_size, max_iter=2, random_state=0).fit(X, y)
    per_row = 0.1 / n
    sizes = {-(-n // -(-n // batch_size)), n // -(-n // batch_size)}  # the two batch sizes
    assert seen and all(per_row * min(sizes) / max(sizes) * 0.999 <= value
                        <= per_row * max(sizes) / min(sizes) * 1.001 for value in seen)


@pytest.mark.parametrize("batch_size", [0, -3])
def test_a_batch_size_below_one_is_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        list(even_batches(10, batch_size))
