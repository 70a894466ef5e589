"""
LSTM against GRU and a plain RNN on the adding problem
======================================================

The adding problem (Hochreiter & Schmidhuber, 1997) tests long-term memory. Each
sequence has two channels: random values in [0, 1], and a marker that is 1 at exactly
two steps, one in each half of the sequence. The target is the sum of the two marked
values. Always answering 1.0 (the mean) gives a mean squared error of 1/6 ≈ 0.167; a
model that has learnt the task does far better.

Because the first marked value may lie anywhere in the first half, the model must carry
it across up to ``seq_len`` steps. We train on sequences of growing length, with the
same estimator and settings (hidden size, optimizer, learning rate, gradient clipping,
batch size, number of epochs) and only the recurrent cell changed:

* ``LSTMRegressor(cell="lstm")``, the default;
* ``LSTMRegressor(cell="gru")``, the gated recurrent unit (Cho et al., 2014);
* ``LSTMRegressor(cell="rnn")``, a **plain (Elman) RNN**,
  ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``;

and, for reference, scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` on the
flattened sequence (``2 * seq_len`` inputs) with its default settings, and the trivial
baseline, the mean training target.

All models see the same few thousand training sequences and are scored on fresh test
sequences. The budget is deliberately small (15 epochs) so that this page builds in
seconds; ``benchmarks/long_memory.py`` runs the same comparison on longer sequences
(:ref:`long-memory`).
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from numlstm import LSTMRegressor
from numlstm.datasets import make_adding_problem

SEQ_LENS = [10, 25, 50, 100]
N_TRAIN, N_TEST = 2000, 500
HIDDEN, EPOCHS, BATCH, LR, CLIP = 32, 15, 64, 0.01, 1.0


# %%
# Training every model at every length
# ------------------------------------
CELLS = {"LSTM": "lstm", "GRU": "gru", "plain RNN": "rnn"}
results = {name: [] for name in (*CELLS, "MLP (flattened)", "mean")}
for seq_len in SEQ_LENS:
    X_train, y_train = make_adding_problem(N_TRAIN, seq_len, random_state=0)
    X_test, y_test = make_adding_problem(N_TEST, seq_len, random_state=1)

    seconds = {}
    for name, cell in CELLS.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget
            model = LSTMRegressor(cell=cell, hidden_size=HIDDEN, max_iter=EPOCHS,
                                  n_iter_no_change=EPOCHS, batch_size=BATCH,
                                  learning_rate_init=LR, clip_grad_norm=CLIP,
                                  # every raw step: the memory compared spans them all
                                  patch_length=1, alpha=1e-4,
                                  random_state=0).fit(X_train, y_train)
        results[name].append(np.mean((model.predict(X_test) - y_test) ** 2))
        seconds[name] = time.perf_counter() - start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(random_state=0).fit(X_train.reshape(N_TRAIN, -1), y_train)
    results["MLP (flattened)"].append(
        np.mean((mlp.predict(X_test.reshape(N_TEST, -1)) - y_test) ** 2))
    results["mean"].append(np.mean((y_train.mean() - y_test) ** 2))

    print(f"seq_len={seq_len:4d}: " + ", ".join(
        f"{name} {mses[-1]:.4f}" for name, mses in results.items())
        + "  (" + ", ".join(f"{name} {t:.1f} s" for name, t in seconds.items()) + ")")

# %%
# Test error against sequence length
# ----------------------------------
# The dotted line is 10x better than the trivial baseline, a common threshold for
# "solved".
fig, ax = plt.subplots(figsize=(7, 4.5))
styles = {"LSTM": "o-", "GRU": "D-", "plain RNN": "s-", "MLP (flattened)": "^-",
          "mean": "k--"}
for name, mses in results.items():
    ax.plot(SEQ_LENS, mses, styles[name], label=name)
ax.axhline(1 / 60, color="grey", linestyle=":", label="10x better than the mean")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks(SEQ_LENS, [str(n) for n in SEQ_LENS])
ax.set_xlabel("sequence length")
ax.set_ylabel("test mean squared error")
ax.set_title(f"Adding problem: {N_TRAIN} training sequences, {EPOCHS} epochs")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# On the shortest sequences the plain RNN learns the task too, since the marked values
# are only a few steps from the end. But its gradient passes through ``tanh`` and
# ``W_hh`` once per step and shrinks geometrically with the distance, so as the
# sequences grow it learns less and less, and on long ones no more than the mean. The
# LSTM's additive cell state carries both the value and its gradient across the whole
# sequence, and the GRU's gated update does the same; their error hardly changes with
# the length. The MLP sees every step at once, but has to learn the product of each
# value with its marker separately at every position, which a few thousand examples do
# not pin down as the sequences grow.
