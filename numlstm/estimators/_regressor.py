"""LSTM regressor: sequence-to-one and sequence-to-sequence regression."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if

from .._utils.validation import check_regression_targets, check_sequences, valid_steps_mask
from ._base import BaseLSTM, _mean_and_scale
from .._utils.docstrings import fill_shared_sections

__all__ = ["LSTMRegressor"]


@fill_shared_sections
class LSTMRegressor(RegressorMixin, BaseLSTM):
    """Regression with a long short-term memory network.

    An LSTM (:class:`numlstm.LSTM`) reads each sequence; a dense layer maps
    its final hidden state (sequence-to-one) or its output at every
    timestep (sequence-to-sequence, when ``y`` is 3-D) to the targets. The
    network is trained on the squared error with mini-batch Adam or SGD, or
    with full-batch L-BFGS.

    Inputs are standardised per feature, and targets per output, inside the
    estimator (statistics of the first ``fit``/``partial_fit`` data), so the
    defaults work without hand-tuning; predictions are returned in the
    original units.

    Parameters
    ----------
    %(network_and_solver_parameters)s
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data and
        stop when its R² score stops improving; the weights of the best
        epoch are kept. Only for "adam"/"sgd" and ``fit``. Without it,
        ``fit`` ends with the weights of the epoch with the lowest training
        loss.
    %(stopping_and_run_parameters)s

    Attributes
    ----------
    network_ : LSTMNetwork
        The fitted network; ``network_.lstm`` is a :class:`numlstm.LSTM`
        and ``network_.coef_`` / ``network_.intercept_`` the output layer.
        It works on standardised inputs and targets.
    loss_ : float
        Training loss of the last epoch (half the mean squared error on
        standardised targets, plus the L2 penalty).
    loss_curve_ : list of float
        Training loss after each epoch (each L-BFGS iteration).
    best_loss_ : float
        Smallest value of ``loss_curve_``.
    validation_scores_ : list of float or None
        R² on the held-out data after each epoch, when ``early_stopping``.
    best_validation_score_ : float or None
        Best of ``validation_scores_``.
    n_iter_ : int
        Number of epochs (iterations for "lbfgs") run.
    t_ : int
        Number of training samples seen by the solver.
    n_features_in_ : int
        Number of features (channels) per timestep seen in ``fit``.
    patch_length_ : int
        Steps the network reads as one step (``patch_length`` resolved).
    n_outputs_ : int
        Number of targets per sequence (or per timestep).

    Notes
    -----
    %(notes)s

    See Also
    --------
    LSTMClassifier : Classification with the same network.
    numlstm.LSTM : The recurrent layers (research API).

    References
    ----------
    Hochreiter, S. and Schmidhuber, J. (1997). Long short-term memory.
    Neural Computation, 9(8), 1735-1780.

    Examples
    --------
    >>> from numlstm.estimators import LSTMRegressor
    >>> from numlstm.datasets import make_adding_problem
    >>> X, y = make_adding_problem(n_samples=200, seq_len=10, random_state=0)
    >>> reg = LSTMRegressor(hidden_size=8, max_iter=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _loss = "squared_error"

    def _prepare_targets(self, y, n_samples, n_timesteps, lengths, *, reset, classes=None):
        y = check_regression_targets(y, n_samples, n_timesteps=n_timesteps, lengths=lengths,
                                     estimator_name=type(self).__name__)
        Y = y.reshape(n_samples, 1) if y.ndim == 1 else y
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = Y.shape[-1]
            values = Y[valid_steps_mask(n_samples, n_timesteps, lengths)] if Y.ndim == 3 else Y
            self._y_mean, self._y_scale = _mean_and_scale(values, "y")
        else:
            if (y.ndim == 3) != (self._y_ndim == 3) or Y.shape[-1] != self.n_outputs_:
                raise ValueError(
                    f"y has shape {y.shape}, but the estimator was fitted with "
                    f"{'3-D (sequence) ' if self._y_ndim == 3 else ''}targets of "
                    f"{self.n_outputs_} output(s); set warm_start=False to refit."
                )
        Ys = (Y - self._y_mean) / self._y_scale
        if Y.ndim == 3 and lengths is not None:
            Ys[~valid_steps_mask(n_samples, n_timesteps, lengths)] = 0.0
        return Ys

    # R^2 of one target is undefined (NaN): early stopping would never see an improvement.
    _MIN_VALIDATION_SEQUENCES = 2

    def _validation_score(self, X, Y, lengths):
        pred = self.network_.predict(X, lengths).astype(np.float64)
        if Y.ndim == 3:
            mask = valid_steps_mask(Y.shape[0], Y.shape[1], lengths)
            return float(r2_score(Y[mask], pred[mask]))
        return float(r2_score(Y, pred))

    def predict(self, X):
        """Predict targets for sequences ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the formats accepted by :meth:`fit`; their length
            may differ from the training sequences'.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,), (n_samples, n_outputs) or \
                (n_samples, n_timesteps, n_outputs)
            Predictions in the shape of the training ``y`` (float64). For
            sequence targets the array covers the padded length and is zero
            after each sequence's end.
        """
        return self._predict_from_output(*self._network_output(X))

    def _predict_from_output(self, out, lengths=None):
        """Predictions in the targets' units and shape from the network output."""
        y_pred = out * self._y_scale + self._y_mean
        if self._y_ndim == 3:
            if lengths is not None:
                y_pred[~valid_steps_mask(y_pred.shape[0], y_pred.shape[1], lengths)] = 0.0
            return y_pred
        return y_pred.ravel() if self._y_ndim == 1 else y_pred

    @available_if(BaseLSTM._check_stochastic_solver)
    def partial_fit(self, X, y):
        """Run one epoch of the stochastic solver over ``(X, y)``.

        The first call builds the network (and the standardisation) from
        this data; later calls continue training it, keeping the optimizer's
        state. Early stopping is not used. Only for ``solver`` "adam"/"sgd".

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences.
        y : array-like of shape (n_samples,), (n_samples, n_outputs) or \
                (n_samples, n_timesteps, n_outputs)
            Targets.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._validate_params()
        return self._fit(X, y, incremental=True)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R² of the predictions.

        For sequence (3-D) targets, R² is computed over every valid
        timestep, each output a column.

        Parameters
        ----------
        X : array-like
            Test sequences, as for :meth:`predict`.
        y : array-like
            True targets, shaped like the training ``y``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (sequence-to-one targets only).

        Returns
        -------
        score : float
            R² of ``self.predict(X)`` against ``y``.
        """
        if getattr(self, "_y_ndim", None) != 3:
            return super().score(X, y, sample_weight=sample_weight)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by score for sequence (3-D) "
                             "targets.")
        y_pred = self.predict(X)
        X3, lengths = check_sequences(X, dtype=np.float64)
        y_true = check_regression_targets(y, X3.shape[0], n_timesteps=X3.shape[1],
                                          lengths=lengths)
        mask = valid_steps_mask(X3.shape[0], X3.shape[1], lengths)
        if y_true.ndim != 3:
            raise ValueError(f"y must be 3-D (sequence targets) like in fit, got shape "
                             f"{y_true.shape}.")
        return float(r2_score(y_true[mask], y_pred[mask]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
