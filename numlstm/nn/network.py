"""Recurrent layers with a dense output layer: the network the estimators fit.

:class:`LSTMNetwork` joins recurrent layers (a :class:`numlstm.LSTM`, :class:`numlstm.GRU`
or :class:`numlstm.RNN`) and a dense output layer and computes the training loss and its
gradient for a batch. It is what a fitted estimator keeps in ``network_``; researchers can
reach the recurrent part as ``est.network_.lstm`` and the output layer as ``coef_`` /
``intercept_``.
"""

import contextlib
import threading

import numpy as np

from .background_compile import maybe_start as start_background_compile
from .losses import LOSS_FUNCTIONS, OUTPUT_ACTIVATIONS, OUTPUT_FOR_LOSS
from .readout import check_readout, pool, pool_backward, readout_width
from .recurrent import _check_positive_int, _check_rate, checked_state_value

__all__ = ["LSTMNetwork"]


class LSTMNetwork:
    """(Stacked, optionally bidirectional) recurrent layers followed by a dense layer.

    Sequence-to-one (``sequence_output=False``): the dense layer reads what
    ``readout`` makes of the last layer. ``"last"``: its final hidden state,
    ``h_n`` — for the forward direction the state at each sequence's own last
    valid step, for the reverse direction the state after reading ``t = 0`` —
    concatenated over directions. ``"mean"`` / ``"max"``: the mean / the
    largest value of each unit of its output over the valid steps;
    ``"mean_max"``: both side by side (see :mod:`numlstm.nn.readout`).

    Sequence-to-sequence (``sequence_output=True``): the dense layer is
    applied to the recurrent output at every timestep; padded steps are ignored by
    the loss and receive no gradient.

    Parameters
    ----------
    lstm : numlstm.LSTM, numlstm.GRU or numlstm.RNN
        The recurrent layers (the name is historical: any cell works).
    n_outputs : int
        Number of outputs of the dense layer.
    loss : {"squared_error", "binary_log_loss", "log_loss"}, default="squared_error"
        Training loss; it fixes the output activation (identity, logistic,
        softmax).
    sequence_output : bool, default=False
        Whether an output is produced at every timestep.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the dense layer's initialisation.
    readout : {"last", "mean", "max", "mean_max"}, default="last"
        What the dense layer reads in a sequence-to-one network (ignored, and
        must be "last", with ``sequence_output=True``).
    output_dropout : float in [0, 1), default=0.0
        Probability of zeroing each input of the dense layer (each element of
        the features ``readout`` makes, or of the outputs at every step) while
        training; the others are scaled by ``1 / (1 - output_dropout)``, so that
        inference uses every feature unchanged. The masks come from the recurrent
        layers' random stream, after their own dropout masks.

    Attributes
    ----------
    lstm : LSTM, GRU or RNN
        The recurrent layers.
    coef_ : ndarray of shape (n_readout, n_outputs)
        Weights of the dense layer (``raw = features @ coef_ + intercept_``);
        ``n_readout`` is ``lstm.output_size``, twice that for "mean_max".
    intercept_ : ndarray of shape (n_outputs,)
        Intercepts of the dense layer.
    out_activation : str
        Name of the output activation.
    params : list of ndarray
        ``[lstm.flat_parameters, coef_, intercept_]``, live arrays; an
        optimizer updating them in place trains the network.
    grads : list of ndarray
        Gradients matching ``params``, filled by :meth:`loss_and_gradient`.

    Notes
    -----
    The LSTM keeps scratch arrays between calls, so one network must not run
    two passes at once. :meth:`decision_function`, :meth:`predict` and
    :meth:`loss_and_gradient` take a lock of the network: calls from several
    threads are safe and run one after the other (each pass already uses
    every core).
    """

    def __init__(self, lstm, n_outputs, loss="squared_error", sequence_output=False,
                 random_state=None, readout="last", output_dropout=0.0):
        if loss not in LOSS_FUNCTIONS:
            raise ValueError(f"loss must be one of {sorted(LOSS_FUNCTIONS)}, got {loss!r}.")
        check_readout(readout)
        if sequence_output and readout != "last":
            raise ValueError(f"readout={readout!r} pools a sequence into one output; a "
                             "sequence-output network reads every step (readout='last').")
        self.readout = readout
        self.output_dropout = _check_rate(output_dropout, "output_dropout")
        self.lstm = lstm
        self.n_outputs = _check_positive_int(n_outputs, "n_outputs")
        self.loss = loss
        self.out_activation = OUTPUT_FOR_LOSS[loss]
        self.sequence_output = bool(sequence_output)
        rng = np.random.default_rng(random_state)
        n_in = readout_width(readout, lstm.output_size)
        bound = 1.0 / np.sqrt(n_in)  # torch.nn.Linear's default range
        dtype = lstm.dtype
        self.coef_ = rng.uniform(-bound, bound, (n_in, self.n_outputs)).astype(dtype)
        self.intercept_ = rng.uniform(-bound, bound, self.n_outputs).astype(dtype)
        self._coef_grad = np.zeros_like(self.coef_)
        self._intercept_grad = np.zeros_like(self.intercept_)
        self._weight_mask = None
        self._lock = threading.RLock()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("readout", "last")  # pickles of earlier versions
        self.__dict__.setdefault("output_dropout", 0.0)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ params
    @property
    def params(self):
        """Live parameter arrays: LSTM flat vector, dense weights, dense intercepts."""
        return [self.lstm.flat_parameters, self.coef_, self.intercept_]

    @property
    def grads(self):
        """Gradient arrays matching :attr:`params`."""
        return [self.lstm.flat_gradient, self._coef_grad, self._intercept_grad]

    @property
    def n_params(self):
        """Total number of scalar parameters."""
        return sum(p.size for p in self.params)

    def get_flat_params(self):
        """Return every parameter in one new 1-D array (LSTM first, then dense layer).

        Returns
        -------
        flat : ndarray of shape (n_params,)
            A copy.
        """
        return np.concatenate([p.ravel() for p in self.params])

    def set_flat_params(self, flat):
        """Set every parameter from a 1-D array laid out as :meth:`get_flat_params`.

        Parameters
        ----------
        flat : array-like of shape (n_params,)
            New values (converted to the network's dtype).
        """
        flat = np.asarray(flat).ravel()
        if flat.size != self.n_params:
            raise ValueError(f"flat has {flat.size} values, expected {self.n_params}.")
        start = 0
        for p in self.params:
            p.ravel()[...] = flat[start:start + p.size]  # views: params are contiguous
            start += p.size

    def get_flat_grads(self):
        """Return every gradient in one new 1-D array, laid out as :meth:`get_flat_params`."""
        return np.concatenate([g.ravel() for g in self.grads])

    def all_finite(self):
        """Whether every parameter is finite."""
        return all(np.isfinite(p).all() for p in self.params)

    def state_dict(self):
        """Copies of every parameter, keyed like PyTorch.

        Returns
        -------
        state : dict of str to ndarray
            The LSTM's ``state_dict()`` entries plus ``"output.weight"`` of
            shape (n_outputs, n_readout) (see ``coef_``) and
            ``"output.bias"``, as in ``torch.nn.Linear``.
        """
        state = dict(self.lstm.state_dict())
        state["output.weight"] = self.coef_.T.copy()
        state["output.bias"] = self.intercept_.copy()
        return state

    def load_state_dict(self, state):
        """Load parameters saved by :meth:`state_dict`.

        Parameters
        ----------
        state : dict of str to array-like
            Must hold every key of :meth:`state_dict` with matching shapes.
        """
        state = dict(state)
        missing = sorted({"output.weight", "output.bias"} - set(state))
        if missing:
            raise KeyError(f"state_dict does not match this network: missing keys {missing}")
        # Every value is checked before any is loaded: a refused dict changes nothing.
        weight = checked_state_value(state.pop("output.weight"), "output.weight",
                                     self.coef_.T)
        bias = checked_state_value(state.pop("output.bias"), "output.bias", self.intercept_)
        self.lstm.load_state_dict(state)
        self.coef_[...] = weight.T
        self.intercept_[...] = bias

    def _lstm_weight_mask(self):
        """Boolean mask over ``lstm.flat_parameters``: True on weights, False on biases."""
        if self._weight_mask is None:
            flat = self.lstm.flat_parameters
            saved = flat.copy()
            try:
                flat[...] = 0
                for name, view in self.lstm.parameters().items():
                    if name.startswith("weight"):
                        view[...] = 1
                self._weight_mask = flat != 0
            finally:
                flat[...] = saved
        return self._weight_mask

    # ----------------------------------------------------------------- forward
    def _features(self, out, h_n, lengths):
        """Inputs of the dense layer (per-timestep outputs, final states or pooled
        outputs) and what :func:`~numlstm.nn.readout.pool_backward` needs."""
        if self.sequence_output:
            return out, None
        if self.readout != "last":
            return pool(out, lengths, self.readout)
        D = self.lstm.num_directions
        return np.concatenate(list(h_n[-D:]), axis=1), None

    def _output_dropout_mask(self, shape):
        """The dropout mask of the dense layer's input of this ``shape`` while training
        (from the recurrent layers' random stream, so a fit draws the same masks on any
        device and thread count), or None."""
        if not (self.lstm.training and self.output_dropout > 0.0):
            return None
        keep = 1.0 - self.output_dropout
        dtype = self.lstm.dtype
        return (self.lstm._rng.random(shape) < keep).astype(dtype) / dtype.type(keep)

    @contextlib.contextmanager
    def inference(self):
        """Hold the network's lock with its layers in inference mode (no dropout)."""
        with self._lock:
            was_training = self.lstm.training
            self.lstm.eval()
            try:
                yield self
            finally:
                self.lstm.train(was_training)

    def dense(self, features):
        """Raw outputs of the dense layer for ``features`` (..., n_readout), in float64.

        In float64 because a float32 product would round differently for one row (BLAS
        gemv) than for many (gemm), so a sample's prediction would depend on the batch
        it came in.
        """
        return np.asarray(features, dtype=np.float64) @ self.coef_.astype(np.float64) \
            + self.intercept_

    def activate(self, raw):
        """The output activation (predictions or probabilities) of raw outputs."""
        return OUTPUT_ACTIVATIONS[self.out_activation](raw)

    def stream(self, batch_size=1):
        """A :class:`~numlstm.nn.network_stream.NetworkStream`: this network's outputs
        for sequences fed a few steps at a time."""
        from .network_stream import NetworkStream
        return NetworkStream(self, batch_size)

    def decision_function(self, X, lengths=None):
        """Raw outputs (logits) of the network in inference mode.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_timesteps, n_features)
            Input sequences (already validated).
        lengths : ndarray of shape (n_samples,) or None
            Valid length of each sequence; None means all are full length.

        Returns
        -------
        raw : ndarray of shape (n_samples, n_outputs) or (n_samples, n_timesteps, n_outputs)
            Raw outputs; zero at padded steps for sequence output.
        """
        with self.inference():
            out, (h_n, *_) = self.lstm.forward_states(X, lengths=lengths,
                                                      requires_grad=False)
            raw = self.dense(self._features(out, h_n, lengths)[0])
        if self.sequence_output and lengths is not None:
            raw[np.arange(raw.shape[1])[None, :] >= lengths[:, None]] = 0
        return raw

    def predict(self, X, lengths=None):
        """Outputs after the output activation (predictions or probabilities).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_timesteps, n_features)
            Input sequences (already validated).
        lengths : ndarray of shape (n_samples,) or None
            Valid length of each sequence.

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs) or (n_samples, n_timesteps, n_outputs)
            Activated outputs.
        """
        raw = self.decision_function(X, lengths)
        out = self.activate(raw)
        if self.sequence_output and lengths is not None:
            out[np.arange(out.shape[1])[None, :] >= lengths[:, None]] = 0
        return out

    # ---------------------------------------------------------------- training
    def loss_and_gradient(self, X, Y, lengths=None, alpha=0.0, training=True):
        """Loss of a batch and its gradient with respect to every parameter.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_timesteps, n_features)
            Input sequences (already validated, network dtype).
        Y : ndarray of shape (n_samples, n_outputs) or (n_samples, n_timesteps, n_outputs)
            Targets in the form the loss expects (standardised values, 0/1
            column, or one-hot rows).
        lengths : ndarray of shape (n_samples,) or None
            Valid length of each sequence.
        alpha : float, default=0.0
            L2 penalty on the weights (not the biases), scaled as
            ``0.5 * alpha * ||w||^2 / n_samples``.
        training : bool, default=True
            Whether dropout (of the recurrent layers and of the dense layer's input)
            is active.

        Returns
        -------
        loss : float
            Data loss plus penalty. The gradients are left in :attr:`grads`.
        """
        # A first step in a fresh environment compiles for seconds: a second process
        # compiles part of it alongside.
        start_background_compile(self, X, Y, lengths, alpha)
        with self._lock:
            return self._loss_and_gradient(X, Y, lengths, alpha, training)

    def _loss_and_gradient(self, X, Y, lengths, alpha, training):
        # The layer's mode for this call only (as in inference): a validation loss must
        # not leave dropout off for the training that follows.
        was_training = self.lstm.training
        self.lstm.train(training)
        try:
            return self._loss_and_gradient_in_mode(X, Y, lengths, alpha)
        finally:
            self.lstm.train(was_training)

    def _loss_and_gradient_in_mode(self, X, Y, lengths, alpha):
        n = X.shape[0]
        out, (h_n, *_) = self.lstm.forward_states(X, lengths=lengths)
        feats, pooled = self._features(out, h_n, lengths)
        feature_mask = self._output_dropout_mask(feats.shape)
        if feature_mask is not None:
            feats = feats * feature_mask
        if self.sequence_output:
            if lengths is None:
                valid = np.ones(out.shape[:2], dtype=bool)
            else:
                valid = np.arange(out.shape[1])[None, :] < lengths[:, None]
            feats2 = feats[valid]
            y2 = Y[valid]
        else:
            feats2, y2 = feats, Y
        raw = feats2 @ self.coef_ + self.intercept_
        loss, d_raw = LOSS_FUNCTIONS[self.loss](y2, raw)
        d_raw = d_raw.astype(self.coef_.dtype, copy=False)
        np.matmul(feats2.T, d_raw, out=self._coef_grad)
        self._intercept_grad[...] = d_raw.sum(axis=0)
        d_feats = d_raw @ self.coef_.T
        if feature_mask is not None:
            d_feats *= feature_mask[valid] if self.sequence_output else feature_mask

        D, H = self.lstm.num_directions, self.lstm.state_size
        d_states = None
        if self.sequence_output:
            d_out = np.zeros_like(out)
            d_out[valid] = d_feats
        elif pooled is not None:
            d_out = pool_backward(d_feats, pooled, out.shape, out.dtype)
        else:
            d_out = np.zeros_like(out)
            d_h_n = np.zeros_like(h_n)
            for d in range(D):
                d_h_n[h_n.shape[0] - D + d] = d_feats[:, d * H:(d + 1) * H]
            d_states = (d_h_n,) + (None,) * (self.lstm.n_states - 1)
        # The network's input is the data: the gradient w.r.t. it is not needed.
        self.lstm.backward_states(d_out, d_states, input_gradient=False)

        if alpha:
            mask = self._lstm_weight_mask()
            flat = self.lstm.flat_parameters
            w = flat[mask]
            squares = float(np.dot(w, w)) + float(np.vdot(self.coef_, self.coef_))
            penalty = 0.5 * alpha * squares / n
            self.lstm.flat_gradient[mask] += (alpha / n) * w
            self._coef_grad += (alpha / n) * self.coef_
            loss += penalty
        return loss
