"""
Learning curve on ragged multivariate sequences
===============================================

JapaneseVowels, from the UEA multivariate time series archive (bundled with sktime, no
download): nine male speakers each utter the vowels /ae/; every utterance is a series
of 12 LPC cepstrum coefficients, 7 to 29 frames long, and the task is to tell the
speaker. There are 270 training and 370 test utterances.

The sequences have different lengths, so they go to :class:`numlstm.LSTMClassifier`
as a plain list of ``(n_frames, 12)`` arrays: no padding or truncation on our side, and
each sequence is read up to its own last frame.

With ``early_stopping=True`` the estimator holds out 10% of the training data and
records the accuracy on it after every epoch (``validation_scores_``) next to the
training loss (``loss_curve_``); :func:`numlstm.plot_learning_curve` draws both.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning
from sktime.datasets import load_japanese_vowels

from numlstm import LSTMClassifier, plot_learning_curve


def load(split):
    frames, labels = load_japanese_vowels(split=split, return_type="df-list")
    return [f.to_numpy() for f in frames], labels


X_train, y_train = load("train")
X_test, y_test = load("test")
lengths = sorted({len(x) for x in X_train + X_test})
print(f"{len(X_train)} training and {len(X_test)} test sequences, "
      f"{X_train[0].shape[1]} channels, {lengths[0]} to {lengths[-1]} frames")

# %%
# Fitting with early stopping
# ---------------------------
clf = LSTMClassifier(hidden_size=32, early_stopping=True, n_iter_no_change=15,
                     max_iter=80, random_state=0)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)
print(f"{clf.n_iter_} epochs in {time.perf_counter() - start:.1f} s; best validation "
      f"accuracy {clf.best_validation_score_:.3f}")
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# The learning curve
# ------------------
# The training loss (left axis) keeps falling while the validation accuracy (right
# axis) levels off; the dotted line marks the best validation epoch, whose weights the
# estimator keeps for ``predict``.
fig, ax = plt.subplots(figsize=(7, 4))
plot_learning_curve(clf, ax=ax, logy=True)
ax.get_legend().set_loc("center right")
ax.set_title("LSTMClassifier on JapaneseVowels")
fig.tight_layout()
plt.show()

# %%
# The same data from the curves
# -----------------------------
# The curves are plain lists on the fitted estimator, for your own plots or checks.
print("first losses:", [round(v, 3) for v in clf.loss_curve_[:5]])
print("first validation accuracies:", [round(v, 3) for v in clf.validation_scores_[:5]])
