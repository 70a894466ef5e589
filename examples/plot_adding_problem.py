"""
LSTM against a plain RNN on the adding problem
==============================================

The adding problem (Hochreiter & Schmidhuber, 1997) tests long-term memory. Each
sequence has two channels: random values in [0, 1], and a marker that is 1 at exactly
two steps, one in each half of the sequence. The target is the sum of the two marked
values. Always answering 1.0 (the mean) gives a mean squared error of 1/6 ≈ 0.167; a
model that has learnt the task does far better.

Because the first marked value may lie anywhere in the first half, the model must carry
it across up to ``seq_len`` steps. We train on sequences of growing length:

* :class:`numlstm.LSTMRegressor`;
* a **plain (Elman) RNN**, ``h_t = tanh(W_x x_t + W_h h_{t-1} + b)``, written below in a
  few lines of NumPy and trained with backpropagation through time (numlstm has no RNN
  class). It gets the same hidden size, optimizer (Adam), learning rate, gradient
  clipping, batch size, number of epochs and standardisation of inputs and targets as
  the LSTM, so the only difference is the cell;
* scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` on the flattened
  sequence (``2 * seq_len`` inputs), with its default settings;
* the trivial baseline, the mean training target.

All models see the same few thousand training sequences and are scored on fresh test
sequences. The budget is deliberately small (15 epochs) so that this page builds in
seconds; with more data and epochs every model improves.
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
# A plain RNN in NumPy
# --------------------
# Forward pass through time, then backpropagation through time (BPTT) of the squared
# error of a linear read-out of the last hidden state. The initialisation is PyTorch's
# ``nn.RNN`` default (uniform in ±1/sqrt(H)); gradients are clipped to a global norm of
# ``CLIP`` and applied with Adam, exactly like the LSTM estimator does.
class ElmanRNN:
    def __init__(self, n_in, hidden, seed=0):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden)
        self.params = {
            "W_x": rng.uniform(-bound, bound, (n_in, hidden)),
            "W_h": rng.uniform(-bound, bound, (hidden, hidden)),
            "b": rng.uniform(-bound, bound, hidden),
            "w_o": rng.uniform(-bound, bound, hidden),
            "b_o": np.zeros(1),
        }

    def forward(self, X):
        p = self.params
        n, T, _ = X.shape
        hs = np.zeros((T + 1, n, p["W_h"].shape[0]))
        for t in range(T):
            hs[t + 1] = np.tanh(X[:, t] @ p["W_x"] + hs[t] @ p["W_h"] + p["b"])
        return hs[-1] @ p["w_o"] + p["b_o"], hs

    def loss_and_grads(self, X, y):
        p = self.params
        pred, hs = self.forward(X)
        err = pred - y
        loss = 0.5 * np.mean(err ** 2)
        d_pred = err / len(y)
        g = {"w_o": hs[-1].T @ d_pred, "b_o": np.array([d_pred.sum()])}
        g.update({k: np.zeros_like(p[k]) for k in ("W_x", "W_h", "b")})
        dh = np.outer(d_pred, p["w_o"])
        for t in range(X.shape[1] - 1, -1, -1):
            da = dh * (1.0 - hs[t + 1] ** 2)          # through tanh
            g["W_x"] += X[:, t].T @ da
            g["W_h"] += hs[t].T @ da
            g["b"] += da.sum(axis=0)
            dh = da @ p["W_h"].T                       # to the previous step
        return loss, g

    def fit(self, X, y, epochs, batch, lr, clip, seed=0):
        rng = np.random.default_rng(seed)
        m = {k: np.zeros_like(v) for k, v in self.params.items()}
        v = {k: np.zeros_like(v) for k, v in self.params.items()}
        step = 0
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch):
                idx = order[start:start + batch]
                _, g = self.loss_and_grads(X[idx], y[idx])
                norm = np.sqrt(sum((gk ** 2).sum() for gk in g.values()))
                scale = min(1.0, clip / (norm + 1e-12))
                step += 1
                for k in self.params:                  # Adam (beta1=0.9, beta2=0.999)
                    gk = g[k] * scale
                    m[k] = 0.9 * m[k] + 0.1 * gk
                    v[k] = 0.999 * v[k] + 0.001 * gk ** 2
                    m_hat = m[k] / (1 - 0.9 ** step)
                    v_hat = v[k] / (1 - 0.999 ** step)
                    self.params[k] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        return self


def standardise(X_train, X_test, y_train):
    """Per-channel and target standardisation, as the LSTM estimator does inside."""
    mean, std = X_train.mean(axis=(0, 1)), X_train.std(axis=(0, 1))
    y_mean, y_std = y_train.mean(), y_train.std()
    return (X_train - mean) / std, (X_test - mean) / std, (y_train - y_mean) / y_std, (
        y_mean, y_std)


# %%
# Training every model at every length
# ------------------------------------
results = {name: [] for name in ("LSTM", "plain RNN", "MLP (flattened)", "mean")}
for seq_len in SEQ_LENS:
    X_train, y_train = make_adding_problem(N_TRAIN, seq_len, random_state=0)
    X_test, y_test = make_adding_problem(N_TEST, seq_len, random_state=1)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget
        lstm = LSTMRegressor(hidden_size=HIDDEN, max_iter=EPOCHS, n_iter_no_change=EPOCHS,
                             batch_size=BATCH, learning_rate_init=LR, clip_grad_norm=CLIP,
                             random_state=0).fit(X_train, y_train)
    results["LSTM"].append(np.mean((lstm.predict(X_test) - y_test) ** 2))
    t_lstm = time.perf_counter() - start

    start = time.perf_counter()
    Xs_train, Xs_test, ys_train, (y_mean, y_std) = standardise(X_train, X_test, y_train)
    rnn = ElmanRNN(2, HIDDEN).fit(Xs_train, ys_train, EPOCHS, BATCH, LR, CLIP)
    rnn_pred = rnn.forward(Xs_test)[0] * y_std + y_mean
    results["plain RNN"].append(np.mean((rnn_pred - y_test) ** 2))
    t_rnn = time.perf_counter() - start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(random_state=0).fit(X_train.reshape(N_TRAIN, -1), y_train)
    results["MLP (flattened)"].append(
        np.mean((mlp.predict(X_test.reshape(N_TEST, -1)) - y_test) ** 2))
    results["mean"].append(np.mean((y_train.mean() - y_test) ** 2))

    print(f"seq_len={seq_len:4d}: " + ", ".join(
        f"{name} {mses[-1]:.4f}" for name, mses in results.items())
        + f"  (LSTM {t_lstm:.1f} s, NumPy RNN {t_rnn:.1f} s)")

# %%
# Test error against sequence length
# ----------------------------------
# The dotted line is 10x better than the trivial baseline, a common threshold for
# "solved".
fig, ax = plt.subplots(figsize=(7, 4.5))
styles = {"LSTM": "o-", "plain RNN": "s-", "MLP (flattened)": "^-", "mean": "k--"}
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
# ``W_h`` once per step and shrinks geometrically with the distance, so as the
# sequences grow it learns less and less, and on long ones no more than the mean. The
# LSTM's additive cell state carries both the value and its gradient across the whole
# sequence, and its error hardly changes with the length. The MLP sees every step at
# once, but has to learn the product of each value with its marker separately at every
# position, which a few thousand examples do not pin down as the sequences grow.
