"""Long-term memory study: LSTM, GRU and plain RNN on the adding problem as sequences grow.

Trains :class:`numlstm.LSTMRegressor` with ``cell="lstm"``, ``"gru"`` and ``"rnn"`` on the
adding problem (Hochreiter & Schmidhuber, 1997; :func:`numlstm.datasets.make_adding_problem`)
for several sequence lengths, every model with the same fixed budget (epochs, batch size,
learning rate, hidden size) and the same seeds, and prints the test mean squared error of
each next to the trivial baseline (predicting the mean training target, MSE about 1/6).
A model has learnt the task when its MSE is far below the baseline (10x below is a common
threshold); one that has not sits at the baseline.

Usage::

    python benchmarks/long_memory.py                      # lengths 50, 100, 200, 400
    python benchmarks/long_memory.py --seeds 0 1 2        # mean over several seeds
    python benchmarks/long_memory.py --rst --plot docs/_static/long_memory.png
    python benchmarks/long_memory.py --quick              # tiny smoke run (CI)

The budget is per model, not per second: a GRU step costs about 3/4 and an RNN step 1/4
of an LSTM step, so the table compares what each cell learns from the same data and
number of updates. Wall times are printed for information.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from numlstm import LSTMRegressor  # noqa: E402
from numlstm.datasets import make_adding_problem  # noqa: E402

CELLS = ("lstm", "gru", "rnn")
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN (tanh)"}


def train_and_score(cell, seq_len, seed, n_train, n_test, epochs, hidden_size, batch_size,
                    learning_rate):
    """Fit one model with a fixed epoch budget; return (test MSE, baseline MSE, seconds)."""
    X_train, y_train = make_adding_problem(n_train, seq_len, random_state=seed)
    X_test, y_test = make_adding_problem(n_test, seq_len, random_state=10_000 + seed)
    model = LSTMRegressor(cell=cell, hidden_size=hidden_size, max_iter=epochs,
                          n_iter_no_change=epochs, batch_size=batch_size,
                          learning_rate_init=learning_rate, random_state=seed,
                          # every raw step, so that the memory measured spans seq_len
                          # steps; and the penalty and input scaling these
                          # measurements were made with
                          patch_length=1, alpha=1e-4, input_scaling="channel")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the budget ends training
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    mse = float(np.mean((model.predict(X_test) - y_test) ** 2))
    baseline = float(np.mean((y_train.mean() - y_test) ** 2))
    return mse, baseline, seconds


def run(lengths, seeds, n_train, n_test, epochs, hidden_size, batch_size, learning_rate,
        cells=CELLS, log=print):
    """Train every cell at every length and seed.

    Returns
    -------
    results : dict
        ``results[cell][seq_len]`` is a list of test MSEs (one per seed);
        ``results["baseline"][seq_len]`` likewise for the trivial baseline, and
        ``results["seconds"][cell]`` the total training time of the cell.
    """
    results = {cell: {n: [] for n in lengths} for cell in cells}
    results["baseline"] = {n: [] for n in lengths}
    results["seconds"] = {cell: 0.0 for cell in cells}
    for seq_len in lengths:
        for seed in seeds:
            for cell in cells:
                mse, baseline, seconds = train_and_score(
                    cell, seq_len, seed, n_train, n_test, epochs, hidden_size, batch_size,
                    learning_rate)
                results[cell][seq_len].append(mse)
                results["seconds"][cell] += seconds
                log(f"  seq_len={seq_len:4d} seed={seed} {CELL_NAMES[cell]:>10}: "
                    f"test MSE {mse:.5f} ({seconds:.1f} s)")
            results["baseline"][seq_len].append(baseline)
    return results


def _rows(results, lengths, cells):
    rows = []
    for seq_len in lengths:
        baseline = np.mean(results["baseline"][seq_len])
        row = [str(seq_len), f"{baseline:.4f}"]
        for cell in cells:
            mse = np.mean(results[cell][seq_len])
            row.append(f"{mse:.2e} ({baseline / mse:.0f}x)" if baseline / mse >= 10
                       else f"{mse:.4f}")
        rows.append(row)
    return rows


def format_table(results, lengths, cells=CELLS, rst=False):
    """The table of mean test MSE per length; ``rst`` gives a reStructuredText list-table."""
    header = ["length", "baseline"] + [CELL_NAMES[c] for c in cells]
    rows = _rows(results, lengths, cells)
    if rst:
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in [header] + rows:
            lines.append("   * - " + row[0])
            lines.extend("     - " + value for value in row[1:])
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*r) for r in rows])


def plot(results, lengths, cells, path):
    """Draw test MSE against sequence length (log-log) to ``path``."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for cell, style in zip(cells, ("o-", "s-", "^-")):
        ax.plot(lengths, [np.mean(results[cell][n]) for n in lengths], style,
                label=CELL_NAMES[cell])
    ax.plot(lengths, [np.mean(results["baseline"][n]) for n in lengths], "k--",
            label="baseline (mean)")
    ax.axhline(np.mean(results["baseline"][lengths[0]]) / 10, color="grey", linestyle=":",
               label="10x better than the baseline")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("sequence length")
    ax.set_ylabel("test mean squared error")
    ax.set_title("Adding problem, same budget for every cell")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--rst", action="store_true",
                        help="print the table as reStructuredText (for docs/)")
    parser.add_argument("--plot", metavar="PATH", help="save a figure (needs matplotlib)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: checks that the script runs, measures nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.n_train, args.n_test, args.epochs = [10, 20], 200, 100, 2
    print(f"Adding problem: {args.n_train} training / {args.n_test} test sequences, "
          f"hidden_size={args.hidden_size}, {args.epochs} epochs, batch {args.batch_size}, "
          f"Adam lr={args.learning_rate}, seeds {args.seeds}")
    results = run(args.lengths, args.seeds, args.n_train, args.n_test, args.epochs,
                  args.hidden_size, args.batch_size, args.learning_rate, cells=args.cells)
    print()
    print("Mean test MSE (x: times better than the baseline, shown from 10x):")
    print(format_table(results, args.lengths, args.cells, rst=args.rst))
    print("Training time: " + ", ".join(
        f"{CELL_NAMES[c]} {results['seconds'][c]:.0f} s" for c in args.cells))
    if args.plot:
        plot(results, args.lengths, args.cells, args.plot)
        print(f"Figure saved to {args.plot}")
    return results


if __name__ == "__main__":
    main()
