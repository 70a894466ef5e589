"""Command-line interface: ``python -m numlstm demo`` (also the ``numlstm`` command).

The demo trains an :class:`~numlstm.estimators.LSTMRegressor` on the adding
problem (Hochreiter & Schmidhuber, 1997) at a sequence length where plain
recurrent networks fail, prints the progress of every epoch, then the test
mean squared error next to that of the naive baseline.
"""

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["main", "run_demo"]


def run_demo(seq_len=100, n_train=5000, n_test=1000, epochs=10, hidden_size=32, seed=0,
             verbose=True):
    """Train an LSTM on the adding problem and compare it with the naive baseline.

    Parameters
    ----------
    seq_len : int, default=100
        Length of the sequences (the two marked values are on average
        ``seq_len / 2`` steps apart).
    n_train : int, default=5000
        Number of training sequences.
    n_test : int, default=1000
        Number of test sequences (drawn independently of the training set).
    epochs : int, default=10
        Number of training epochs (``max_iter``).
    hidden_size : int, default=32
        Units of the LSTM.
    seed : int, default=0
        Seed of the data and of the model.
    verbose : bool, default=True
        Print the settings, one line per epoch and the results.

    Returns
    -------
    result : dict
        ``"mse"`` (test MSE of the LSTM), ``"baseline_mse"`` (test MSE of
        predicting the mean training target), ``"ratio"``
        (``baseline_mse / mse``), ``"seconds"`` (wall time of training and
        scoring) and ``"model"`` (the fitted estimator).
    """
    from .datasets import make_adding_problem
    from .estimators import LSTMRegressor

    start = time.perf_counter()
    X_train, y_train = make_adding_problem(n_train, seq_len, random_state=seed)
    X_test, y_test = make_adding_problem(n_test, seq_len, random_state=seed + 1)
    if verbose:
        print(f"Adding problem (Hochreiter & Schmidhuber, 1997): {n_train} training and "
              f"{n_test} test sequences of length {seq_len}, 2 channels.")
        print(f"LSTMRegressor(hidden_size={hidden_size}, max_iter={epochs}), Adam; "
              "the first epoch includes compiling the kernels (cached afterwards).",
              flush=True)
    model = LSTMRegressor(hidden_size=hidden_size, max_iter=epochs, n_iter_no_change=epochs,
                          random_state=seed, verbose=int(verbose))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget
        model.fit(X_train, y_train)
    mse = float(np.mean((model.predict(X_test) - y_test) ** 2))
    baseline_mse = float(np.mean((y_train.mean() - y_test) ** 2))
    seconds = time.perf_counter() - start
    ratio = baseline_mse / mse if mse > 0 else float("inf")
    if verbose:
        print(f"Test MSE of the LSTM:            {mse:.5f}")
        print(f"Test MSE of the naive baseline:  {baseline_mse:.5f} "
              f"(always predicting the mean training target, {y_train.mean():.3f})")
        print(f"The LSTM is {ratio:.0f}x better than the baseline "
              f"({'beats' if ratio >= 10 else 'does NOT beat'} the 10x target); "
              f"{seconds:.1f} s in total.")
    return {"mse": mse, "baseline_mse": baseline_mse, "ratio": ratio, "seconds": seconds,
            "model": model}


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="numlstm", description="numlstm: Numba-accelerated LSTMs with a scikit-learn API.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    demo = sub.add_parser(
        "demo", help="train an LSTM on the adding problem and compare it with a baseline",
        description="Train an LSTMRegressor on the adding problem (Hochreiter & "
                    "Schmidhuber, 1997) and print the test MSE next to the naive baseline's.")
    demo.add_argument("--seq-len", type=int, default=100, help="sequence length (default 100)")
    demo.add_argument("--n-train", type=int, default=5000,
                      help="training sequences (default 5000)")
    demo.add_argument("--n-test", type=int, default=1000, help="test sequences (default 1000)")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    demo.add_argument("--hidden-size", type=int, default=32, help="LSTM units (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="print only the results")
    return parser


def main(argv=None):
    """Entry point of ``python -m numlstm`` and of the ``numlstm`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        Exit status, 0 on success.
    """
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        for name in ("seq_len", "n_train", "n_test", "epochs", "hidden_size"):
            if getattr(args, name) < (2 if name == "seq_len" else 1):
                print(f"numlstm demo: --{name.replace('_', '-')} is too small", file=sys.stderr)
                return 2
        # The test set is drawn with seed + 1: both must be NumPy seeds.
        if not 0 <= args.seed < 2**32 - 1:
            print(f"numlstm demo: --seed must be between 0 and {2**32 - 2}", file=sys.stderr)
            return 2
        try:
            result = run_demo(seq_len=args.seq_len, n_train=args.n_train,
                              n_test=args.n_test, epochs=args.epochs,
                              hidden_size=args.hidden_size, seed=args.seed,
                              verbose=not args.quiet)
        except MemoryError as error:
            # Sizes too large for this machine: the estimator's message says what the
            # fit would need; a traceback adds nothing to it.
            print(f"numlstm demo: {error or 'not enough memory for these sizes'}",
                  file=sys.stderr)
            return 2
        if args.quiet:
            print(f"test MSE {result['mse']:.5f}, baseline MSE {result['baseline_mse']:.5f}, "
                  f"{result['ratio']:.0f}x better, {result['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
