"""numlstm.plotting.plot_learning_curve on the Agg backend."""

import sys

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

matplotlib = pytest.importorskip("matplotlib", reason="plotting needs matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from numlstm import LSTMClassifier, LSTMRegressor  # noqa: E402
from numlstm.plotting import plot_learning_curve  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 6, 1))
Y_REG = X[:, :, 0].sum(axis=1)
Y_CLF = (Y_REG > 0).astype(int)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_loss_and_validation_scores_on_twin_axes(tmp_path):
    clf = LSTMClassifier(hidden_size=4, max_iter=6, early_stopping=True, n_iter_no_change=50,
                         random_state=0).fit(X, Y_CLF)
    fig, given = plt.subplots()
    ax = plot_learning_curve(clf, ax=given)
    assert ax is given
    (loss_line,) = ax.get_lines()
    np.testing.assert_array_equal(loss_line.get_xdata(), np.arange(1, clf.n_iter_ + 1))
    np.testing.assert_array_equal(loss_line.get_ydata(), clf.loss_curve_)
    right = ax.right_ax
    assert right is not None and right is not ax
    assert right.get_shared_x_axes().joined(ax, right)
    score_line, best_line = right.get_lines()
    np.testing.assert_array_equal(score_line.get_ydata(), clf.validation_scores_)
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    assert best_line.get_xdata()[0] == best_epoch
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "training loss"
    assert right.get_ylabel() == "validation score"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["training loss", "validation score"]
    assert ax.get_title() == "LSTMClassifier"
    fig.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_without_validation_scores_and_new_figure():
    reg = LSTMRegressor(hidden_size=4, max_iter=4, random_state=0).fit(X, Y_REG)
    assert reg.validation_scores_ is None
    ax = plot_learning_curve(reg, logy=True, loss_label="loss")
    assert ax.right_ax is None
    assert len(ax.figure.axes) == 1 and len(ax.get_lines()) == 1
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "loss"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), reg.loss_curve_)


def test_an_axes_whose_x_axis_is_log_scaled_takes_the_curve():
    reg = LSTMRegressor(hidden_size=4, max_iter=4, random_state=0).fit(X, Y_REG)
    _, ax = plt.subplots()
    ax.set_xscale("log")
    assert plot_learning_curve(reg, ax=ax) is ax
    assert ax.get_xscale() == "log"


def test_lbfgs_counts_iterations():
    reg = LSTMRegressor(hidden_size=3, max_iter=3, solver="lbfgs", random_state=0)
    ax = plot_learning_curve(reg.fit(X, Y_REG))
    assert ax.get_xlabel() == "iteration"


def test_warm_started_early_stopping_aligns_scores_to_last_epochs():
    reg = LSTMRegressor(hidden_size=3, max_iter=2, random_state=0).fit(X, Y_REG)
    reg.set_params(warm_start=True, early_stopping=True, max_iter=3,
                   n_iter_no_change=50).fit(X, Y_REG)
    ax = plot_learning_curve(reg)
    scores = ax.right_ax.get_lines()[0]
    assert len(reg.loss_curve_) == 5 and len(reg.validation_scores_) == 3
    np.testing.assert_array_equal(scores.get_xdata(), [3, 4, 5])


def test_not_fitted_raises():
    with pytest.raises(NotFittedError, match="LSTMRegressor has no loss_curve_"):
        plot_learning_curve(LSTMRegressor())


def test_any_object_with_the_curves_and_sktime_wrappers():
    """As documented: any object with ``loss_curve_`` (scikit-learn's check of a fitted
    estimator refused these), and a fitted sktime wrapper's estimator."""
    from types import SimpleNamespace

    ax = plot_learning_curve(SimpleNamespace(loss_curve_=[1.0, 0.5, 0.25]))
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, 0.5, 0.25])
    sktime = pytest.importorskip("numlstm.sktime", exc_type=ImportError)
    wrapper = sktime.LSTMTimeSeriesClassifier(hidden_size=2, max_iter=3, random_state=0)
    with pytest.raises(NotFittedError, match="LSTMTimeSeriesClassifier"):
        plot_learning_curve(wrapper)
    wrapper.fit(X.transpose(0, 2, 1), Y_CLF)
    ax = plot_learning_curve(wrapper)
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(),
                                  wrapper.estimator_.loss_curve_)


def test_clear_error_without_matplotlib(monkeypatch):
    reg = LSTMRegressor(hidden_size=2, max_iter=1, random_state=0).fit(X, Y_REG)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_learning_curve(reg)


def test_scores_stay_at_their_epochs_after_partial_fit():
    clf = LSTMClassifier(hidden_size=3, max_iter=3, early_stopping=True, n_iter_no_change=50,
                         random_state=0).fit(X, Y_CLF)
    for _ in range(2):
        clf.partial_fit(X, Y_CLF)  # trains on, records no score
    ax = plot_learning_curve(clf)
    assert len(clf.loss_curve_) == 5 and len(clf.validation_scores_) == 3
    np.testing.assert_array_equal(ax.right_ax.get_lines()[0].get_xdata(), [1, 2, 3])
    # A model saved before the epochs were recorded: aligned to the last epochs.
    del clf._validation_epochs
    ax = plot_learning_curve(clf)
    np.testing.assert_array_equal(ax.right_ax.get_lines()[0].get_xdata(), [3, 4, 5])
