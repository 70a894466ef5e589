"""Predictions of a fitted estimator for sequences that arrive a few steps at a time."""

import numpy as np
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._utils.validation import check_n_features, check_sequences
from ._patches import patch_sequences

__all__ = ["PredictionStream"]


def _has_predict_proba(stream):
    return hasattr(stream.estimator, "predict_proba")


class PredictionStream:
    """Online predictions of a fitted :class:`LSTMClassifier` or :class:`LSTMRegressor`.

    Made by the estimators' ``stream`` method. Each call takes the next steps of every
    sequence of the batch and returns what ``predict`` (or ``predict_proba``) of the
    estimator gives on everything fed so far, without running the earlier steps again:
    the recurrent states, the pooled readouts and an incomplete patch are carried from
    call to call, for every member of an ensemble. The estimator's standardisation is
    applied to each chunk.

    For a regressor fitted on sequence targets (3-D ``y``), a call returns the
    predictions at the steps of the chunk, as ``predict`` gives them for those steps.

    Parameters
    ----------
    estimator : LSTMClassifier or LSTMRegressor
        A fitted estimator with unidirectional layers and ``input_scaling_="channel"``
        (each series scaled by statistics of all its steps cannot be fed a few steps at a
        time). Its networks are read at every call, so further training (a warm start,
        ``partial_fit``) shows in the next prediction; a new fit replaces them, and the
        stream then refuses to go on (make a new one).
    batch_size : int, default=1
        Number of sequences fed side by side.

    Attributes
    ----------
    n_steps_seen : int
        Steps fed since the start or the last :meth:`reset`.

    Notes
    -----
    The predictions equal those of ``predict`` on the prefix to float rounding (the
    tests check it for every readout, patch length and ensemble); they are not bit for
    bit the same, because sums over time and thread splits run in another order.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import LSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 12, 1))
    >>> y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    >>> clf = LSTMClassifier(hidden_size=8, max_iter=5, input_scaling="channel",
    ...                      random_state=0).fit(X, y)
    >>> stream = clf.stream()
    >>> for t in range(12):                      # one step per call
    ...     label = stream.predict(X[:1, t:t + 1])
    >>> bool(label[0] == clf.predict(X[:1])[0])
    True
    """

    def __init__(self, estimator, batch_size=1):
        check_is_fitted(estimator, "network_")
        if getattr(estimator, "input_scaling_", "channel") == "series":
            raise ValueError(
                "a stream cannot predict for an estimator fitted with "
                "input_scaling='series': each series is scaled by the mean and standard "
                "deviation of all its steps, which are not known until the series ends. "
                "Fit with input_scaling='channel' to predict online.")
        self.estimator = estimator
        self._networks = [net.stream(batch_size) for net in estimator.networks_]
        self.batch_size = self._networks[0].batch_size
        self.reset()

    def reset(self):
        """Forget the steps fed so far (start new sequences); returns ``self``."""
        for stream in self._networks:
            stream.reset()
        est = self.estimator
        n_features = est.n_features_in_
        self._pending = np.empty((self.batch_size, 0, n_features), dtype=est._dtype)
        self.n_steps_seen = 0
        return self

    def _check_same_fit(self):
        """Refuse to go on after the estimator was fitted anew: a new fit (not a warm
        start, which trains the same networks further) replaces its networks, and the
        stream would mix the old ones with the new classes and scaling."""
        est = self.estimator
        members = est.networks_
        if len(members) != len(self._networks) or any(
                member is not stream.network
                for member, stream in zip(members, self._networks)):
            raise ValueError(
                f"the {type(est).__name__} was fitted anew since this stream was made, "
                "which replaced its networks; make a new stream with its stream() method")

    def _standardised_chunk(self, X):
        est = self.estimator
        if isinstance(X, np.ndarray) and X.ndim == 2 and est.n_features_in_ > 1:
            raise ValueError(
                f"a 2-D chunk is read as (batch, time): steps of one channel, but this "
                f"{type(est).__name__} was fitted on {est.n_features_in_} channels; pass "
                f"one step of each sequence with shape (batch, 1, {est.n_features_in_}), "
                "e.g. X[:, None, :]")
        if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim in (2, 3) \
                and X.shape[1] > 0 and np.isfinite(X).all():
            # What check_sequences accepts, without its generic (and, for one step,
            # dominant) checks of the input's kind.
            X3, lengths = (X[:, :, None] if X.ndim == 2 else X), None
        else:
            X3, lengths = check_sequences(X, dtype=np.float64)
        if lengths is not None:
            raise ValueError("every sequence of a stream gets the same number of steps "
                             "per call; got chunks of different lengths")
        check_n_features(X3.shape[2], est.n_features_in_, type(est).__name__)
        if X3.shape[0] != self.batch_size:
            raise ValueError(f"this stream carries {self.batch_size} sequence(s); the chunk "
                             f"has {X3.shape[0]} (shape {X3.shape})")
        return est._standardise(X3).astype(est._dtype)

    def _feed(self, X):
        """Run the next steps; the members' step outputs for sequence targets."""
        self._check_same_fit()
        steps = self._standardised_chunk(X)
        n_steps = steps.shape[1]
        patch = getattr(self.estimator, "patch_length_", 1)
        if patch == 1:
            outputs = [stream.feed(steps) for stream in self._networks]
            self.n_steps_seen += n_steps  # counted once every member has them
            return None if outputs[0] is None else sum(outputs) / len(outputs)
        steps = np.concatenate([self._pending, steps], axis=1)
        complete = steps.shape[1] // patch * patch
        if complete:
            patches = np.ascontiguousarray(patch_sequences(steps[:, :complete], None,
                                                           patch)[0])
            for stream in self._networks:
                stream.feed(patches)
        self._pending = steps[:, complete:]
        self.n_steps_seen += n_steps
        return None

    def _output(self):
        """The members' mean activated output for the prefix fed so far."""
        if self.n_steps_seen == 0:
            raise ValueError("no steps have been fed yet: pass at least one step")
        pending = None
        if self._pending.shape[1]:
            # The incomplete last patch, filled up with zeros as predict does.
            pending = patch_sequences(self._pending, None, self.estimator.patch_length_)[0]
        outputs = [stream.predict(pending) for stream in self._networks]
        return sum(outputs) / len(outputs)

    def predict(self, X):
        """Feed the next steps and predict from everything fed so far.

        Parameters
        ----------
        X : array-like of shape (batch_size, time, n_features) or (batch_size, time)
            The next ``time`` steps (one or more) of each sequence; 2-D means one
            channel, as in ``fit``.

        Returns
        -------
        y_pred : ndarray
            What the estimator's ``predict`` gives on the sequences fed so far; for
            sequence targets, its predictions at the steps of ``X``.
        """
        out = self._feed(X)
        if out is not None:
            return self.estimator._predict_from_output(out)
        return self.estimator._predict_from_output(self._output())

    @available_if(_has_predict_proba)
    def predict_proba(self, X):
        """Feed the next steps and give the class probabilities of everything fed so far.

        Parameters
        ----------
        X : array-like of shape (batch_size, time, n_features) or (batch_size, time)
            The next steps of each sequence.

        Returns
        -------
        proba : ndarray of shape (batch_size, n_classes)
            What the classifier's ``predict_proba`` gives on the sequences fed so far.
        """
        self._feed(X)
        return self.estimator._proba_from_output(self._output())

    def __repr__(self):
        return (f"PredictionStream({type(self.estimator).__name__}, batch_size="
                f"{self.batch_size}, n_steps_seen={self.n_steps_seen})")
