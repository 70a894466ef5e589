"""Plots of fitted estimators (matplotlib, an optional dependency, imported lazily)."""

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = ["plot_learning_curve"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plot_learning_curve needs matplotlib, which could not be imported. Install it "
            "with `pip install matplotlib` (or `pip install numlstm[examples]`)."
        ) from exc
    return plt


def _with_curves(estimator):
    """``estimator``, or the fitted numlstm estimator an sktime wrapper holds, whichever
    has the curves; NotFittedError when neither has."""
    if not hasattr(estimator, "loss_curve_"):
        inner = getattr(estimator, "estimator_", None)
        if hasattr(inner, "loss_curve_"):
            return inner
        raise NotFittedError(
            f"{type(estimator).__name__} has no loss_curve_: fit it before plotting its "
            "learning curve.")
    return estimator


def plot_learning_curve(estimator, ax=None, *, logy=False, loss_label="training loss",
                        score_label="validation score"):
    """Plot the training loss and validation score of a fitted estimator per epoch.

    Draws ``estimator.loss_curve_`` on ``ax`` (left axis) and, when the estimator was
    fitted with ``early_stopping=True``, ``estimator.validation_scores_`` on a twin axis
    sharing the x axis (right), with a dotted vertical line at the epoch of the best
    validation score, whose weights the estimator keeps.

    Parameters
    ----------
    estimator : LSTMRegressor or LSTMClassifier
        A fitted estimator (any object with ``loss_curve_`` and, optionally,
        ``validation_scores_`` works), or a fitted sktime wrapper of
        :mod:`numlstm.sktime`, whose ``estimator_`` is plotted.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when omitted.
    logy : bool, default=False
        Use a logarithmic scale for the loss.
    loss_label, score_label : str
        Labels of the two curves (legend and y axes).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes holding the loss curve. When validation scores were drawn, their twin
        axes is ``ax.right_ax`` (otherwise ``ax.right_ax`` is None).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against the training set size.

    Notes
    -----
    The x axis counts epochs for the stochastic solvers ("adam", "sgd") and iterations
    for "lbfgs". Losses of regressors are on standardised targets (half the mean squared
    error); scores are R² (regressors) or accuracy (classifiers).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from numlstm import LSTMClassifier
    >>> from numlstm.plotting import plot_learning_curve
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 10, 1))
    >>> y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    >>> clf = LSTMClassifier(hidden_size=8, max_iter=15, early_stopping=True,
    ...                      random_state=0).fit(X, y)
    >>> ax = plot_learning_curve(clf)
    >>> ax.get_xlabel(), ax.get_ylabel(), ax.right_ax.get_ylabel()
    ('epoch', 'training loss', 'validation score')
    """
    estimator = _with_curves(estimator)
    plt = _import_pyplot()
    if ax is None:
        _, ax = plt.subplots()
    losses = np.asarray(estimator.loss_curve_, dtype=float)
    epochs = np.arange(1, losses.size + 1)
    loss_color, score_color = "C0", "C1"
    lines = ax.plot(epochs, losses, color=loss_color, marker="." if losses.size < 50 else None,
                    label=loss_label)
    ax.set_xlabel("iteration" if getattr(estimator, "solver", None) == "lbfgs" else "epoch")
    ax.set_ylabel(loss_label, color=loss_color)
    ax.tick_params(axis="y", colors=loss_color)
    if logy:
        ax.set_yscale("log")
    ax.right_ax = None
    scores = getattr(estimator, "validation_scores_", None)
    if scores is not None and len(scores):
        scores = np.asarray(scores, dtype=float)
        right = ax.twinx()
        score_epochs = np.asarray(getattr(estimator, "_validation_epochs", None) or [])
        if score_epochs.size != scores.size:
            # A model of an earlier version, which did not record them: the scores end
            # with the last epoch (a warm start began early stopping later).
            score_epochs = np.arange(losses.size - scores.size + 1, losses.size + 1)
        lines += right.plot(score_epochs, scores, color=score_color,
                            marker="." if scores.size < 50 else None, label=score_label)
        best = score_epochs[int(np.argmax(scores))]
        lines.append(right.axvline(best, color=score_color, linestyle=":", linewidth=1,
                                   label=f"best {score_label} (epoch {best})"))
        right.set_ylabel(score_label, color=score_color)
        right.tick_params(axis="y", colors=score_color)
        ax.right_ax = right
        # Keep the loss axes (and its legend) above the twin, which draws no background.
        ax.set_zorder(right.get_zorder() + 1)
        ax.patch.set_visible(False)
    if losses.size:
        ax.set_xlim(0.5, losses.size + 0.5)
    from matplotlib.ticker import MaxNLocator

    locator = ax.xaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # a log-scaled axis the caller set has another
        locator.set_params(integer=True)
    ax.legend(lines, [line.get_label() for line in lines], loc="best", framealpha=0.9)
    ax.set_title(type(estimator).__name__)
    return ax
