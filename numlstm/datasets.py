"""Synthetic sequence tasks with long-range dependencies (no download).

Both tasks are classic tests of long-term memory: the information needed
for the answer is far back in the sequence, which defeats plain recurrent
networks once sequences are long.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_adding_problem", "make_copy_task"]


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def make_adding_problem(n_samples=1000, seq_len=100, random_state=None):
    """Generate the adding problem (Hochreiter & Schmidhuber, 1997).

    Each sequence has two channels. Channel 0 holds values drawn uniformly
    from [0, 1]; channel 1 is a marker that is 1 at exactly two timesteps —
    one in the first half of the sequence, one in the second half — and 0
    elsewhere. The target is the sum of the two marked values.

    Predicting the constant 1.0 (the mean of the target) gives a mean squared
    error of 1/6 ≈ 0.167 (the variance of the sum of two independent
    uniform values); a model has solved the task when its MSE is far below
    that, e.g. under 0.0167 (10x better).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences, >= 1.
    seq_len : int, default=100
        Number of timesteps of every sequence, >= 2. Plain RNNs fail on this
        task from lengths of about 100 on.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator, for reproducible data.

    Returns
    -------
    X : ndarray of shape (n_samples, seq_len, 2)
        Values in channel 0, markers in channel 1 (float64).
    y : ndarray of shape (n_samples,)
        Sum of the two marked values, in [0, 2].

    References
    ----------
    Hochreiter, S. and Schmidhuber, J. (1997). Long short-term memory.
    Neural Computation, 9(8), 1735-1780 (experiment 4).

    Le, Q. V., Jaitly, N. and Hinton, G. E. (2015). A simple way to
    initialize recurrent networks of rectified linear units.
    arXiv:1504.00941 (the variant with one marker per half used here).

    Examples
    --------
    >>> from numlstm.datasets import make_adding_problem
    >>> X, y = make_adding_problem(n_samples=4, seq_len=50, random_state=0)
    >>> X.shape, y.shape
    ((4, 50, 2), (4,))
    >>> X[:, :, 1].sum(axis=1)
    array([2., 2., 2., 2.])
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    seq_len = _check_int(seq_len, "seq_len", 2)
    rng = check_random_state(random_state)
    values = rng.uniform(0.0, 1.0, size=(n_samples, seq_len))
    half = seq_len // 2
    first = rng.randint(0, half, size=n_samples)
    second = rng.randint(half, seq_len, size=n_samples)
    markers = np.zeros((n_samples, seq_len))
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=2)
    y = values[rows, first] + values[rows, second]
    return X, y


def make_copy_task(n_samples=1000, copy_len=10, delay=50, n_symbols=8, one_hot_targets=False,
                   random_state=None):
    """Generate the copy (memory) task.

    The network reads ``copy_len`` random symbols, then ``delay`` blank
    steps, the last of which is a "go" marker; during the final
    ``copy_len`` steps it must output the symbols it read, in order. At every
    other step the target is the blank symbol 0. Sequences have
    ``T = 2 * copy_len + delay`` steps; the task is a sequence-to-sequence
    problem (one target per timestep).

    Symbols are coded 1..``n_symbols``; 0 is the blank and
    ``n_symbols + 1`` the go marker. Inputs are one-hot over these
    ``n_symbols + 2`` codes.

    A memoryless baseline that outputs blanks and then guesses symbols at
    random has a cross-entropy of ``copy_len * log(n_symbols) / T`` per step.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of sequences, >= 1.
    copy_len : int, default=10
        Number of symbols to remember, >= 1.
    delay : int, default=50
        Number of steps between the end of the symbols and the start of the
        answer (the go marker included), >= 1.
    n_symbols : int, default=8
        Size of the alphabet, >= 1.
    one_hot_targets : bool, default=False
        Return ``y`` one-hot encoded (float, last axis of size
        ``n_symbols + 1``), ready for
        :class:`numlstm.LSTMRegressor`'s sequence-to-sequence mode, instead
        of integer codes.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator, for reproducible data.

    Returns
    -------
    X : ndarray of shape (n_samples, T, n_symbols + 2)
        One-hot inputs (float64).
    y : ndarray of shape (n_samples, T) of int64, or (n_samples, T, n_symbols + 1)
        Target codes per step (0 = blank), or their one-hot encoding.

    References
    ----------
    Hochreiter, S. and Schmidhuber, J. (1997). Long short-term memory.
    Neural Computation, 9(8), 1735-1780.

    Arjovsky, M., Shah, A. and Bengio, Y. (2016). Unitary evolution
    recurrent neural networks. ICML (the copy-task layout used here).

    Examples
    --------
    >>> from numlstm.datasets import make_copy_task
    >>> X, y = make_copy_task(n_samples=2, copy_len=3, delay=4, random_state=0)
    >>> X.shape, y.shape
    ((2, 10, 10), (2, 10))
    >>> bool((y[:, -3:] == X[:, :3].argmax(axis=2)).all())
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    copy_len = _check_int(copy_len, "copy_len", 1)
    delay = _check_int(delay, "delay", 1)
    n_symbols = _check_int(n_symbols, "n_symbols", 1)
    rng = check_random_state(random_state)
    T = 2 * copy_len + delay
    symbols = rng.randint(1, n_symbols + 1, size=(n_samples, copy_len))
    codes = np.zeros((n_samples, T), dtype=np.int64)
    codes[:, :copy_len] = symbols
    codes[:, copy_len + delay - 1] = n_symbols + 1
    X = np.eye(n_symbols + 2)[codes]
    y = np.zeros((n_samples, T), dtype=np.int64)
    y[:, T - copy_len:] = symbols
    if one_hot_targets:
        y = np.eye(n_symbols + 1)[y]
    return X, y
