"""Output-layer math: activations and losses, as small lookup tables.

Plain NumPy (the output layer is cheap next to the LSTM). Every loss is
computed from the *raw* outputs of the dense layer (the logits), which keeps
the log-likelihoods stable for large logits, and comes with the gradient of
the loss with respect to those raw outputs. For each output activation the
matching loss is the canonical one, so the gradient is
``(activation(raw) - y) / n`` (divided as documented below).

Tables
------
OUTPUT_ACTIVATIONS : dict
    ``name -> function(raw) -> prediction`` (``"identity"``, ``"logistic"``,
    ``"softmax"``).
LOSS_FUNCTIONS : dict
    ``name -> function(y_true, raw) -> (loss, d_raw)`` (``"squared_error"``,
    ``"binary_log_loss"``, ``"log_loss"``).
OUTPUT_FOR_LOSS : dict
    ``loss name -> output activation name``.
"""

import numpy as np

__all__ = [
    "identity", "logistic", "softmax", "squared_error", "binary_log_loss", "log_loss",
    "OUTPUT_ACTIVATIONS", "LOSS_FUNCTIONS", "OUTPUT_FOR_LOSS", "l2_penalty",
]


def identity(raw):
    """Identity activation.

    Parameters
    ----------
    raw : ndarray of shape (n_samples, n_outputs)
        Raw outputs.

    Returns
    -------
    out : ndarray
        ``raw`` itself.
    """
    return raw


def logistic(raw):
    """Logistic sigmoid ``1 / (1 + exp(-raw))``, computed without overflow.

    Parameters
    ----------
    raw : ndarray
        Raw outputs (logits).

    Returns
    -------
    prob : ndarray
        Values in [0, 1], same shape and dtype as ``raw``.
    """
    return (0.5 + 0.5 * np.tanh(0.5 * raw)).astype(raw.dtype, copy=False)


def softmax(raw):
    """Row-wise softmax along the last axis, shifted by the row maximum.

    Parameters
    ----------
    raw : ndarray of shape (..., n_classes)
        Raw outputs (logits).

    Returns
    -------
    prob : ndarray
        Non-negative values whose last axis sums to 1.
    """
    shifted = raw - raw.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(raw):
    shifted = raw - raw.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def squared_error(y_true, raw):
    """Half mean squared error and its gradient.

    ``loss = 0.5 * mean((raw - y_true) ** 2)`` over all samples *and*
    outputs, so its value is half the usual MSE.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_outputs)
        Targets.
    raw : ndarray of shape (n_samples, n_outputs)
        Predictions (identity activation).

    Returns
    -------
    loss : float
        The loss.
    d_raw : ndarray of shape (n_samples, n_outputs)
        Gradient of ``loss`` with respect to ``raw``: ``(raw - y) / raw.size``.
    """
    diff = raw - y_true
    loss = 0.5 * float(np.mean(np.square(diff, dtype=np.float64)))
    return loss, diff / diff.size


def binary_log_loss(y_true, raw):
    """Logistic (binary cross-entropy) loss from logits, and its gradient.

    ``loss = mean(softplus(raw) - y * raw)``, the mean over samples of
    ``-y log p - (1 - y) log(1 - p)`` with ``p = logistic(raw)``.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, 1)
        0/1 targets.
    raw : ndarray of shape (n_samples, 1)
        Logits.

    Returns
    -------
    loss : float
        The loss.
    d_raw : ndarray of shape (n_samples, 1)
        ``(logistic(raw) - y) / n_samples``.
    """
    raw64 = raw.astype(np.float64)
    softplus = np.logaddexp(0.0, raw64)
    loss = float(np.sum(softplus - y_true * raw64) / raw.shape[0])
    return loss, (logistic(raw) - y_true) / raw.shape[0]


def log_loss(y_true, raw):
    """Multinomial cross-entropy from logits (softmax output), and its gradient.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_classes)
        One-hot targets.
    raw : ndarray of shape (n_samples, n_classes)
        Logits.

    Returns
    -------
    loss : float
        ``-mean over samples of sum_k y_k log softmax(raw)_k``.
    d_raw : ndarray of shape (n_samples, n_classes)
        ``(softmax(raw) - y) / n_samples``.
    """
    logp = _log_softmax(raw.astype(np.float64))
    loss = float(-np.sum(y_true * logp) / raw.shape[0])
    return loss, (softmax(raw) - y_true) / raw.shape[0]


def l2_penalty(weights, alpha, n_samples):
    """L2 penalty ``0.5 * alpha * sum(w ** 2) / n_samples`` (scikit-learn's MLP scaling).

    Parameters
    ----------
    weights : list of ndarray
        The penalised arrays (weights; intercepts/biases are not penalised).
    alpha : float
        Strength of the penalty.
    n_samples : int
        Number of samples (sequences) in the batch.

    Returns
    -------
    penalty : float
        The value added to the loss. Its gradient with respect to ``w`` is
        ``alpha * w / n_samples``.
    """
    total = sum(float(np.dot(w.ravel(), w.ravel())) for w in weights)
    return 0.5 * alpha * total / n_samples


OUTPUT_ACTIVATIONS = {"identity": identity, "logistic": logistic, "softmax": softmax}

LOSS_FUNCTIONS = {
    "squared_error": squared_error,
    "binary_log_loss": binary_log_loss,
    "log_loss": log_loss,
}

OUTPUT_FOR_LOSS = {
    "squared_error": "identity",
    "binary_log_loss": "logistic",
    "log_loss": "softmax",
}
