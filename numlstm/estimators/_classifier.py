"""LSTM classifier: one label per sequence."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import unique_labels

from .._utils.validation import check_classification_labels
from ._base import BaseLSTM
from .._utils.docstrings import fill_shared_sections

__all__ = ["LSTMClassifier"]


@fill_shared_sections
class LSTMClassifier(ClassifierMixin, BaseLSTM):
    """Sequence classification with a long short-term memory network.

    An LSTM (:class:`numlstm.LSTM`) reads each sequence; a dense layer maps
    its final hidden state to one logit (two classes, logistic output) or
    one logit per class (softmax output). The network is trained on the
    cross-entropy with mini-batch Adam or SGD, or with full-batch L-BFGS.
    Inputs are standardised per feature inside the estimator.

    Parameters
    ----------
    %(network_and_solver_parameters)s
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified) and stop when its accuracy stops improving; the weights
        of the best epoch are kept. Only for "adam"/"sgd" and ``fit``. Without it,
        ``fit`` ends with the weights of the epoch with the lowest training
        loss.
    %(stopping_and_run_parameters)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    network_ : LSTMNetwork
        The fitted network; ``network_.lstm`` is a :class:`numlstm.LSTM`
        and ``network_.coef_`` / ``network_.intercept_`` the output layer.
    loss_ : float
        Training cross-entropy (plus L2 penalty) of the last epoch.
    loss_curve_ : list of float
        Training loss after each epoch (each L-BFGS iteration).
    best_loss_ : float
        Smallest value of ``loss_curve_``.
    validation_scores_ : list of float or None
        Accuracy on the held-out data after each epoch, when
        ``early_stopping``.
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

    Notes
    -----
    %(notes)s

    See Also
    --------
    LSTMRegressor : Regression with the same network.
    numlstm.LSTM : The recurrent layers (research API).

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm.estimators import LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 8, 1))
    >>> y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    >>> clf = LSTMClassifier(hidden_size=8, max_iter=5, random_state=0).fit(X, y)
    >>> clf.classes_
    array(['down', 'up'], dtype='<U4')
    >>> clf.predict_proba(X[:2]).sum(axis=1)
    array([1., 1.])
    """

    _AUTO_INPUT_DROPOUT = 0.1

    @property
    def _loss(self):
        return "binary_log_loss" if len(self.classes_) == 2 else "log_loss"

    def _prepare_targets(self, y, n_samples, n_timesteps, lengths, *, reset, classes=None):
        labels = check_classification_labels(y, n_samples, estimator_name=type(self).__name__)
        if reset:
            self.classes_ = unique_labels(classes if classes is not None else labels)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes in y, but y holds only "
                    f"one class: {self.classes_[0]!r}."
                )
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(
                f"classes={classes!r} differs from the classes of the fitted estimator, "
                f"{self.classes_!r}; set warm_start=False to refit."
            )
        unseen = np.setdiff1d(labels, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels not in classes_ {self.classes_!r}: {unseen!r}"
                + (" (partial_fit needs every class in its first call's classes=)."
                   if classes is not None or not reset else ".")
            )
        codes = np.searchsorted(self.classes_, labels)
        if len(self.classes_) == 2:
            return codes.astype(np.float64)[:, None]
        return np.eye(len(self.classes_))[codes]

    def _stratify_labels(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y.argmax(axis=1)

    def _validation_score(self, X, Y, lengths):
        proba = self.network_.predict(X, lengths)
        if Y.shape[1] == 1:
            return float(np.mean((proba[:, 0] > 0.5) == (Y[:, 0] > 0.5)))
        return float(np.mean(proba.argmax(axis=1) == Y.argmax(axis=1)))

    def predict_proba(self, X):
        """Probability of each class for sequences ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the formats accepted by :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities (float64), columns ordered as ``classes_``;
            every row sums to 1.
        """
        return self._proba_from_output(self._network_output(X)[0])

    def _proba_from_output(self, out):
        """Class probabilities from the (ensemble's mean) network output."""
        if out.shape[1] == 1:
            p = np.clip(out[:, 0], 0.0, 1.0)
            proba = np.column_stack([1.0 - p, p])
        else:
            proba = np.clip(out, 0.0, None)
        return proba / proba.sum(axis=1, keepdims=True)

    def _predict_from_output(self, out):
        """Labels from the network output."""
        return self.classes_[np.argmax(self._proba_from_output(out), axis=1)]

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like
            Sequences, as for :meth:`predict_proba`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities (``-inf`` where a probability underflowed).
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict the class of each sequence.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Sequences, in the formats accepted by :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        return self._predict_from_output(self._network_output(X)[0])

    @available_if(BaseLSTM._check_stochastic_solver)
    def partial_fit(self, X, y, classes=None):
        """Run one epoch of the stochastic solver over ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences.
        y : array-like of shape (n_samples,)
            Labels.
        classes : array-like of shape (n_classes,), default=None
            Every class that will ever appear. Required on the first call
            (which builds the network); optional later, and then it must
            match ``classes_``.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._validate_params()
        if not hasattr(self, "network_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, incremental=True, classes=classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags

    def _more_tags(self):
        tags = super()._more_tags()
        tags["_xfail_checks"]["check_classifiers_train"] = (
            "Besides accuracy, this check expects predict(X.T) to fail, but the transpose "
            "of a 2-D X is a valid batch of (longer) univariate series for a recurrent "
            "model. Everything else it checks (accuracy > 0.83 on its blobs, binary and "
            "multiclass, list input, predict_proba rows summing to 1 and agreeing with "
            "predict, a feature-count error on 3-D input) is tested in "
            "tests/estimators/test_estimators.py::test_classifier_blobs_like_sklearn_check."
        )
        return tags
