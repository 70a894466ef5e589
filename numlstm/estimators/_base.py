"""What :class:`LSTMRegressor` and :class:`LSTMClassifier` share: parameters and their
validation, the scikit-learn protocol, and the glue that hands a fit to
:mod:`numlstm.training` (the loops, checkpoints and memory planning live there)."""

import os
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.array_container import ModelFileError
from .._utils.memory import available_memory as _available_memory
from .._utils.validation import check_n_features, check_sequences, valid_steps_mask
from ..nn import GRU, LSTM, RNN
from ..nn import LSTMNetwork
from ..nn.readout import READOUTS
from ._patches import auto_patch_length, patch_sequences
from ._scaling import scale_each_series, series_statistics, squashing_measures
from ._stream import PredictionStream
from ..training.checkpoints import (data_fingerprint, read_checkpoint, same_param,
                                    write_checkpoint)
from ..training import lbfgs, stochastic
from ..training.errors import TrainingDivergedError, diverged
from ..training.memory import check_fit_memory
from ..training.trainer import take_batch
from ..training.optimizers import AdamOptimizer, SGDOptimizer

__all__ = ["BaseLSTM", "TrainingDivergedError", "load_checkpoint"]

#: Recurrent layer class of each ``cell`` parameter value.
_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}

#: ``max_iter="auto"``: this many epochs ("adam"/"sgd"), or as many as make
#: ``_AUTO_MAX_STEPS`` optimizer steps if that is more (small training sets, where an
#: epoch is one or a few mini-batches); "lbfgs": ``_AUTO_MAX_EPOCHS`` iterations.
_AUTO_MAX_EPOCHS = 100
_AUTO_MAX_STEPS = 1000
#: ``n_iter_no_change="auto"``: this many epochs, or as many as make
#: ``_AUTO_PATIENCE_STEPS`` optimizer steps if that is more.
_AUTO_PATIENCE_EPOCHS = 10
_AUTO_PATIENCE_STEPS = 50
#: ``learning_rate="adaptive"``: on a plateau the learning rate is divided by
#: ``_ADAPTIVE_FACTOR``, at most ``_ADAPTIVE_DECAYS`` times; the next plateau stops.
_ADAPTIVE_FACTOR = 5.0
_ADAPTIVE_DECAYS = 2
#: ``alpha="auto"``: the L2 penalty of a mini-batch is ``_AUTO_ALPHA * b / n_samples``, ``b``
#: the mean size of an epoch's (equal) mini-batches, i.e. ``0.5 * _AUTO_ALPHA * ||W||^2 /
#: n_samples`` on each batch's mean loss: strong on tens of sequences, where a network
#: memorises, and fading as the data grow.
_AUTO_ALPHA = 0.1

#: Parameters added after the first release, with the behaviour of the models before them.
_PARAMETERS_ADDED_LATER = {"readout": "last", "patch_length": 1, "n_ensemble": 1,
                           "input_dropout": 0.0, "input_scaling": "channel",
                           "output_dropout": 0.0}
#: ``input_scaling="series"``: the series' statistics (levels and log-amplitudes, in units
#: of the channel's scale over the training set) are divided by their standard deviation
#: over the training set, or by this if it is larger.
_STATISTICS_MIN_SCALE = 0.1
#: ``input_scaling="auto"`` scales each series where the channel scaling would squash
#: the shapes of most series into a small part of the inputs' range: when the share of
#: the training set's variance that lies within the series is below
#: ``_AUTO_SERIES_BELOW_SHARE`` (the series' levels differ more than their values vary),
#: or when half the series vary by less than ``_AUTO_SERIES_BELOW_SPREAD`` of the
#: channel's standard deviation (amplitudes spread over decades); both are means over the
#: channels. Chosen on held-out training data (see the real-data benchmark's page).
_AUTO_SERIES_BELOW_SHARE = 0.5
_AUTO_SERIES_BELOW_SPREAD = 0.1
#: ``patch_length="auto"``: the network reads at most this many steps per sequence.
_AUTO_PATCH_STEPS = 64

#: Largest number of sequences of one forward pass at predict time.
_PREDICT_CHUNK = 65536
#: Scratch memory (bytes) one predict chunk may use: activations of the LSTM layers and
#: the standardised copy of the chunk. Predicting n samples then needs the input, the
#: output and this much, whatever n is.
_PREDICT_MEMORY = 64 * 2**20
#: Share of the available memory that one fit may plan to use.
_MEMORY_FRACTION = 0.8
#: Hyper-parameters that may differ between the fit that wrote a checkpoint and the fit
#: that resumes from it.
_RESUMABLE_PARAMS = frozenset({"max_iter", "verbose", "checkpoint", "checkpoint_every",
                               "warm_start", "n_iter_no_change", "tol", "device",
                               "max_fun"})


def _read_checkpoint(path):
    """The checkpoint at ``path`` (see :func:`numlstm.training.checkpoints.read_checkpoint`),
    its estimator state checked as model files check their attributes."""
    payload = read_checkpoint(path)
    cls = _estimator_class(payload["class"])
    state = payload["state"]
    for name in state:
        # Only attributes a fit sets: a name the class defines (a method, say) would
        # replace that behaviour of the loaded estimator.
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__") \
                or hasattr(cls, name):
            raise ModelFileError(f"the checkpoint {os.fspath(path)!r} holds an invalid "
                                 f"attribute name {name!r}")
    fit_state = state.get("_fit_state")
    if fit_state is not None and not isinstance(fit_state, dict):
        raise ModelFileError(f"the checkpoint {os.fspath(path)!r} is damaged: its fit "
                             f"state is a {type(fit_state).__name__}, not a record")
    return payload


def _estimator_class(name):
    """The numlstm estimator class called ``name`` (a checkpoint names its class)."""
    todo = [BaseLSTM]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name and cls.__module__.startswith("numlstm."):
            return cls
        todo.extend(cls.__subclasses__())
    raise ModelFileError(f"the checkpoint holds an unknown estimator class {name!r}")


def load_checkpoint(path):
    """Return the estimator saved in a training checkpoint.

    The estimator is fitted (usable for ``predict``) with the weights and
    training state of the checkpoint's epoch. To continue the interrupted
    training, call ``fit`` on an estimator with the same ``checkpoint`` path
    and the same data instead (see the ``checkpoint`` parameter).

    Parameters
    ----------
    path : str or os.PathLike
        A file written through the ``checkpoint`` parameter. Checkpoints hold
        arrays and JSON only (the format of :func:`numlstm.save`), so loading
        one cannot run code.

    Returns
    -------
    estimator : LSTMRegressor or LSTMClassifier

    Raises
    ------
    ModelFileError
        When the file is truncated, damaged, not a checkpoint, or a pickled
        checkpoint of an earlier numlstm version (refused without reading it).
    """
    payload = _read_checkpoint(path)
    cls = _estimator_class(payload["class"])
    known = cls().get_params(deep=False)
    unknown = sorted(set(payload["params"]) - set(known))
    if unknown:
        raise ModelFileError(f"the checkpoint {os.fspath(path)!r} has parameters {unknown} "
                             f"that {cls.__name__} does not know")
    est = cls(**cls._with_parameters_added_later(payload["params"]))
    est.__dict__.update(payload["state"])
    est._drop_fit_state()
    return est


def _mean_and_scale(values, name="X"):
    """Mean and standard deviation of each column of ``values`` (of argument ``name``); a
    scale that is zero (or rounding noise next to the mean) becomes 1 so that a constant
    column stays finite. Raises ValueError where they overflow (finite values beyond about
    1e154, whose squares do), which would otherwise train on zeros or predict infinity."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
        raise ValueError(
            f"{name} holds values too large to standardise: their mean or standard "
            f"deviation overflows float64 (largest magnitude {np.abs(values).max():.3g}). "
            f"Rescale {name}.")
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean, scale


class BaseLSTM(BaseEstimator, metaclass=ABCMeta):
    """Base class of the LSTM estimators (training loop, validation, persistence).

    Not meant to be used directly; see :class:`LSTMRegressor` and
    :class:`LSTMClassifier` for the parameters.
    """

    _parameter_constraints = {
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "output_dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "input_scaling": [StrOptions({"auto", "channel", "series"})],
        "cell": [StrOptions(set(_CELLS))],
        "readout": [StrOptions(set(READOUTS))],
        "patch_length": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_ensemble": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"adam", "sgd", "lbfgs"})],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "checkpoint": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, hidden_size=64, num_layers=1, bidirectional=False, dropout=0.0,
                 solver="adam", learning_rate="adaptive", learning_rate_init=0.005,
                 momentum=0.9, nesterovs_momentum=True, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, batch_size="auto", max_iter="auto", max_fun=15000,
                 alpha="auto", clip_grad_norm=1.0, shuffle=True, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change="auto", tol=1e-4,
                 warm_start=False,
                 random_state=None, verbose=0, dtype="float32", device="cpu",
                 checkpoint=None, checkpoint_every=1, cell="lstm", readout="last",
                 patch_length="auto", n_ensemble=1, input_dropout="auto",
                 input_scaling="auto", output_dropout="auto"):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.alpha = alpha
        self.clip_grad_norm = clip_grad_norm
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.device = device
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.cell = cell
        self.readout = readout
        self.patch_length = patch_length
        self.n_ensemble = n_ensemble
        self.input_dropout = input_dropout
        self.input_scaling = input_scaling
        self.output_dropout = output_dropout

    # ------------------------------------------------------------ subclass API
    @abstractmethod
    def _prepare_targets(self, y, n_samples, n_timesteps, lengths, *, reset, classes=None):
        """Validate ``y``; return the network targets (float64) and the loss name."""

    @abstractmethod
    def _validation_score(self, X, Y, lengths):
        """Score (higher is better) of the network on prepared validation data."""

    def _stratify_labels(self, Y):
        """Labels to stratify the early-stopping split on (None: no stratification)."""
        return None

    # -------------------------------------------------------------- input side
    def _resolve_input_scaling(self, X, lengths, sequence_targets):
        """``input_scaling`` for a new fit. "auto" scales each series where scaling by
        channel would squash most series' shapes (see ``_AUTO_SERIES_BELOW_SHARE``), by
        channel otherwise, and always by channel for sequence targets, whose output at
        a step must not depend on the steps after it."""
        if self.input_scaling != "auto":
            return self.input_scaling
        if sequence_targets:
            return "channel"
        share, spread = squashing_measures(X, lengths)
        squashed = (share.mean() < _AUTO_SERIES_BELOW_SHARE
                    or spread.mean() < _AUTO_SERIES_BELOW_SPREAD)
        return "series" if squashed else "channel"

    def _fit_input_scaler(self, X, lengths, scaling):
        values = X[valid_steps_mask(X.shape[0], X.shape[1], lengths)]
        self._x_mean, self._x_scale = _mean_and_scale(values)
        self.input_scaling_ = scaling
        if self.input_scaling_ == "series":
            # The series' own statistics are network inputs, standardised over the
            # training set; but a spread below a tenth of the channel's scale (of a level
            # or a log-amplitude) is not blown up: series normalised beforehand differ
            # there by rounding noise only.
            statistics = series_statistics(X, lengths, self._x_mean, self._x_scale)
            self._stat_mean = statistics.mean(axis=0)
            self._stat_scale = np.maximum(statistics.std(axis=0), _STATISTICS_MIN_SCALE)

    def _network_input_size(self):
        """Inputs of the network per step: a patch of every channel, and with
        ``input_scaling="series"`` two statistics per channel."""
        size = getattr(self, "patch_length_", 1) * self.n_features_in_
        if getattr(self, "input_scaling_", "channel") == "series":
            size += 2 * self.n_features_in_
        return size

    def _standardise(self, X):
        """``X`` (float64, 3-D) scaled by the training statistics of each channel."""
        return (X - self._x_mean) / self._x_scale

    def _transform_input(self, X, lengths):
        """The network's input: ``X`` standardised, zero at padded steps, in patches of
        ``patch_length_`` steps; and the lengths in patches."""
        series_scaling = getattr(self, "input_scaling_", "channel") == "series"
        if series_scaling:
            Xs, statistics = scale_each_series(X, lengths, self._x_mean, self._x_scale)
        else:
            Xs = self._standardise(X)
        if lengths is not None:
            Xs[~valid_steps_mask(X.shape[0], X.shape[1], lengths)] = 0.0
        n_statistics = statistics.shape[1] if series_scaling else 0
        with np.errstate(over="ignore"):
            Xs, lengths = patch_sequences(Xs, lengths, getattr(self, "patch_length_", 1),
                                          extra_features=n_statistics, dtype=self._dtype)
        if not np.isfinite(Xs).all():
            # Finite values far outside the training data's range can overflow the
            # network's dtype once standardised; the network would return NaN.
            raise ValueError(
                f"X holds values too large for this model: standardised with the training "
                f"data's statistics they exceed the range of {np.dtype(self._dtype).name} "
                f"(largest magnitude in X {np.abs(X).max():.3g}).")
        if series_scaling:
            # The same at every step of a sequence, after the patch's values.
            Xs[:, :, Xs.shape[2] - n_statistics:] = (
                (statistics - self._stat_mean) / self._stat_scale)[:, None, :]
        return Xs, lengths

    @staticmethod
    def _with_parameters_added_later(params):
        """``params`` of a model saved by an earlier version (a pickle, a model file, a
        checkpoint), with the parameters added since set to what those models were
        trained with, so that ``get_params``, refits and clones behave as they did."""
        return {**_PARAMETERS_ADDED_LATER, **params}

    def __setstate__(self, state):
        super().__setstate__(self._with_parameters_added_later(state))

    #: ``input_dropout="auto"`` with a stochastic solver (``LSTMClassifier``: 0.1).
    _AUTO_INPUT_DROPOUT = 0.0

    def _input_dropout_rate(self):
        """``input_dropout`` as a number: "auto" resolves per task, and to 0 for L-BFGS,
        whose line search needs a deterministic loss."""
        if self.input_dropout != "auto":
            return float(self.input_dropout)
        return 0.0 if self.solver == "lbfgs" else self._AUTO_INPUT_DROPOUT

    #: ``output_dropout="auto"`` with a stochastic solver and one output per sequence.
    _AUTO_OUTPUT_DROPOUT = 0.1

    def _output_dropout_rate(self, sequence_targets):
        """``output_dropout`` as a number: "auto" gives 0.1 for one output per sequence
        (chosen on held-out training data, see the real-data documentation), 0 for
        sequence targets (not measured there) and for L-BFGS, whose line search needs a
        deterministic loss."""
        if self.output_dropout != "auto":
            return float(self.output_dropout)
        if self.solver == "lbfgs" or sequence_targets:
            return 0.0
        return self._AUTO_OUTPUT_DROPOUT

    def _resolve_patch_length(self, n_timesteps, sequence_targets):
        """``patch_length`` for a new fit on sequences of ``n_timesteps`` steps."""
        if sequence_targets:
            if self.patch_length not in ("auto", 1):
                raise ValueError(
                    f"patch_length={self.patch_length} groups steps, but sequence targets "
                    "need an output at every step; use patch_length=1 (or 'auto').")
            return 1
        if self.patch_length == "auto":
            return auto_patch_length(n_timesteps, _AUTO_PATCH_STEPS)
        return self.patch_length

    def _validate_input(self, X):
        """Validate ``X`` for prediction on a fitted estimator (not yet standardised)."""
        check_is_fitted(self, "network_")
        X3, lengths = check_sequences(X, dtype=np.float64)
        check_n_features(X3.shape[2], self.n_features_in_, type(self).__name__)
        return X3, lengths

    def _predict_chunk_size(self, n_timesteps, n_features):
        """Sequences per forward pass so that one pass needs about ``_PREDICT_MEMORY``."""
        lstm = self.network_.lstm
        D, H, L = lstm.num_directions, lstm.hidden_size, lstm.num_layers
        item = lstm.dtype.itemsize
        # per layer: gate scratch (kept by the layer) and output; the standardised chunk
        # (float64 temporaries and the network-dtype copy); the outputs.
        per_step = (L * (4 * H + 2 * D * H) * item + n_features * (16 + item)
                    + 16 * self.network_.n_outputs)
        per_sequence = max(1, n_timesteps * per_step)
        return int(max(1, min(_PREDICT_CHUNK, _PREDICT_MEMORY // per_sequence)))

    def _network_output(self, X, raw=False):
        """Activated (or raw) network outputs for ``X``, in float64, and the lengths.

        The sequences go through the network in chunks, each standardised on its own, so
        the memory used beyond the input and the output does not grow with the number of
        samples.
        """
        X3, lengths = self._validate_input(X)
        members = self._members()
        n_samples = X3.shape[0]
        out = None
        for chunk in gen_batches(n_samples, self._predict_chunk_size(*X3.shape[1:])):
            xb, lb = X3[chunk], None if lengths is None else lengths[chunk]
            if lb is not None and self.network_.sequence_output is False:
                xb = xb[:, : int(lb.max())]
            inputs = self._transform_input(xb, lb)
            # An ensemble's output is the mean of its members' (probabilities, predictions,
            # or for ``raw`` their logits).
            part = sum((net.decision_function if raw else net.predict)(*inputs)
                       for net in members)
            if len(members) > 1:
                part = part / len(members)
            if out is None:
                out = np.empty((n_samples,) + part.shape[1:], dtype=np.float64)
            out[chunk] = part
        return out, lengths

    def stream(self, batch_size=1):
        """Predict online: feed sequences a few steps at a time.

        Parameters
        ----------
        batch_size : int, default=1
            Number of sequences fed side by side.

        Returns
        -------
        stream : PredictionStream
            Its ``predict`` (and, for a classifier, ``predict_proba``) takes the next
            steps of each sequence and returns what this estimator's ``predict`` gives
            on everything fed so far, at the cost of the new steps only; ``reset()``
            starts new sequences. See :class:`~numlstm.estimators.PredictionStream`.

        Raises
        ------
        NotFittedError
            When the estimator is not fitted.
        ValueError
            When the network is bidirectional (its reverse direction needs each
            sequence's end), or when ``input_scaling="series"`` (each series is scaled
            by statistics of all its steps, which a stream has not seen yet).
        """
        return PredictionStream(self, batch_size)

    # ---------------------------------------------------------------- fitting
    @property
    def _dtype(self):
        return np.dtype(self.dtype)

    def fit(self, X, y):
        """Fit the model to sequences ``X`` and targets ``y``.

        With ``checkpoint`` set and an unfinished training run saved there,
        the run is resumed instead (see the ``checkpoint`` parameter).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
                (n_samples, n_timesteps), or list of array-like
            Training sequences; 2-D means univariate series; a list of
            sequences of different lengths is zero-padded and the lengths
            are honoured.
        y : array-like
            Targets; see the estimator's class documentation.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        TrainingDivergedError
            When the loss, a gradient or the weights become NaN or infinite;
            the estimator keeps the last finite weights (see the class
            documentation of the error).
        MemoryError
            Before anything large is allocated, when the network and one
            mini-batch's activations cannot fit in the available memory.
        KeyboardInterrupt
            Re-raised after an interruption, once the estimator holds the
            best weights so far (see Notes of the estimator).
        """
        self._validate_params()
        return self._fit(X, y, incremental=False)

    def _max_iter(self, steps_per_epoch=1):
        """``max_iter`` in epochs (iterations for "lbfgs"), "auto" resolved."""
        if self.max_iter != "auto":
            return self.max_iter
        if self.solver == "lbfgs":
            return _AUTO_MAX_EPOCHS
        return max(_AUTO_MAX_EPOCHS, -(-_AUTO_MAX_STEPS // steps_per_epoch))

    def _alpha(self, batch_size, n_train):
        """``alpha`` for mini-batches of ``batch_size`` out of ``n_train`` sequences.

        "auto" takes the mean size of the epoch's equal batches, not ``batch_size``: each
        step divides ``alpha`` by its batch's rows, so the penalty on the mean loss is then
        ``0.05 * ||W||^2 / n_train`` for any cut (67 sequences in batches of 34 and 33
        would otherwise be penalised twice as hard as 64 in one)."""
        if self.alpha == "auto":
            mean_batch = n_train / -(-n_train // batch_size)
            return _AUTO_ALPHA * mean_batch / n_train
        return self.alpha

    def _n_iter_no_change(self, steps_per_epoch):
        """``n_iter_no_change`` in epochs, "auto" resolved."""
        if self.n_iter_no_change != "auto":
            return self.n_iter_no_change
        return max(_AUTO_PATIENCE_EPOCHS, -(-_AUTO_PATIENCE_STEPS // steps_per_epoch))

    def _check_stochastic_solver(self):
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers; "
                f"solver={self.solver!r} is not stochastic."
            )
        if self.n_ensemble > 1:
            raise AttributeError(
                f"partial_fit trains one network; n_ensemble={self.n_ensemble} trains an "
                "ensemble with fit. Use n_ensemble=1 to train incrementally.")
        return True

    def _prepare_fit(self, X, y, incremental, classes):
        """Validate a fit's data and settings and set up what it trains (a new network,
        the classes, the scalings, a checkpoint's state to resume): the standardised
        sequences, targets, lengths, data fingerprint and resumed checkpoint."""
        X3, lengths = check_sequences(X, dtype=np.float64)
        n_samples, n_timesteps = X3.shape[:2]
        resume = None
        if self.checkpoint is not None:
            self._check_checkpoint_folder()
        if not incremental and self.checkpoint is not None:
            resume = self._resumable_checkpoint()
        if resume is not None:
            self._restore_state(resume["state"])
            check_n_features(X3.shape[2], self.n_features_in_, type(self).__name__)
            Y = self._prepare_targets(y, n_samples, n_timesteps, lengths, reset=False,
                                      classes=classes)
            if self._data_fingerprint(X3, lengths, Y) != resume["fingerprint"]:
                self._drop_fit_state()
                raise ValueError(
                    f"checkpoint={os.fspath(self.checkpoint)!r} holds an unfinished fit on "
                    "different data (X or y differ). Delete the file, or choose another "
                    "checkpoint path, to start a new fit."
                )
            reset = False
        else:
            continuing = self.warm_start or incremental
            if continuing and (self.n_ensemble > 1 or len(self._members()) > 1):
                raise ValueError(
                    f"{'partial_fit' if incremental else 'warm_start=True'} continues the "
                    "training of one network; an ensemble (n_ensemble="
                    f"{max(self.n_ensemble, len(self._members()))}) is trained by fit from "
                    "scratch. Use n_ensemble=1 to train incrementally.")
            reset = not (continuing and hasattr(self, "network_"))
            if not reset:
                check_n_features(X3.shape[2], self.n_features_in_, type(self).__name__)
                self._check_network_matches()
            Y = self._prepare_targets(y, n_samples, n_timesteps, lengths, reset=reset,
                                      classes=classes)
        if self.early_stopping and not incremental and resume is None and (
                self.solver != "lbfgs"):
            self._validation_size(Y)  # refused now rather than after the set-up
        if self.solver == "lbfgs" and self.dropout > 0 and self.num_layers > 1:
            raise ValueError(
                "dropout > 0 needs a stochastic solver ('adam' or 'sgd'): the line search "
                "of solver='lbfgs' requires a deterministic loss. Set dropout=0.0."
            )
        if self.solver == "lbfgs" and self._input_dropout_rate() > 0:
            raise ValueError(
                "input_dropout > 0 needs a stochastic solver ('adam' or 'sgd'): the line "
                "search of solver='lbfgs' requires a deterministic loss. Set "
                "input_dropout=0.0 (or 'auto').")
        if self.solver == "lbfgs" and self._output_dropout_rate(Y.ndim == 3) > 0:
            raise ValueError(
                "output_dropout > 0 needs a stochastic solver ('adam' or 'sgd'): the line "
                "search of solver='lbfgs' requires a deterministic loss. Set "
                "output_dropout=0.0 (or 'auto').")
        if reset:
            patch = self._resolve_patch_length(n_timesteps, Y.ndim == 3)
            scaling = self._resolve_input_scaling(X3, lengths, Y.ndim == 3)
        else:  # both absent in files of earlier versions
            patch = getattr(self, "patch_length_", 1)
            scaling = getattr(self, "input_scaling_", "channel")
        width = (patch + 2 * (scaling == "series")) * X3.shape[2]
        self._check_fit_memory((n_samples, -(-n_timesteps // patch), width), Y.shape[-1])
        if reset:
            self._initialize(X3, lengths, Y, patch, scaling)
        Y = np.ascontiguousarray(Y, dtype=self._dtype)
        fingerprint = None
        if self.checkpoint is not None:
            # Of the lengths in steps, as a resumed fit computes it (not in patches).
            fingerprint = self._data_fingerprint(X3, lengths, Y)
        Xs, lengths = self._transform_input(X3, lengths)
        if not reset and resume is None:
            self._apply_dropout_rates()
        return Xs, Y, lengths, fingerprint, resume

    def _fit(self, X, y, *, incremental, classes=None):
        before = dict(self.__dict__)
        try:
            Xs, Y, lengths, fingerprint, resume = self._prepare_fit(X, y, incremental,
                                                                    classes)
        except BaseException:
            # A fit refused before training (one class, a patch length for sequence
            # targets, memory...) leaves the estimator as it was: the classes or target
            # scaling it had begun to set would otherwise pair with the old network.
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        del before  # it may hold the previous network, which training no longer needs
        try:
            # Overflow is detected (and reported) by the finiteness checks instead.
            with np.errstate(over="ignore", invalid="ignore"):
                resuming = resume is not None
                while True:
                    if self.solver == "lbfgs":
                        self._fit_lbfgs(Xs, Y, lengths, resume=resuming,
                                        fingerprint=fingerprint)
                    else:
                        self._fit_stochastic(Xs, Y, lengths, incremental=incremental,
                                             resume=resuming, fingerprint=fingerprint)
                    resuming = False
                    if incremental or len(self._members()) >= self.n_ensemble:
                        break
                    # The next member: the trained one joins the others, a new network
                    # with new seeds trains next (its checkpoints hold the finished ones).
                    self._other_networks.append(self.network_)
                    self._new_network(Y)
        except TrainingDivergedError:
            # The weights are the last finite ones; the optimizer state led there, so a
            # following partial_fit / warm start begins with a fresh one.
            if hasattr(self, "_optimizer"):
                del self._optimizer
            raise
        finally:
            self._drop_fit_state()
        return self

    def _drop_fit_state(self):
        for name in ("_fit_state", "_best_params"):
            if name in self.__dict__:
                delattr(self, name)

    # ------------------------------------------------------------- memory
    def _check_fit_memory(self, x_shape, n_outputs):
        """Raise MemoryError, before allocating, when a fit cannot fit in memory (see
        :func:`numlstm.training.memory.check_fit_memory`)."""
        check_fit_memory(x_shape, n_outputs, hidden_size=self.hidden_size,
                         num_layers=self.num_layers, bidirectional=self.bidirectional,
                         solver=self.solver, batch_size=self.batch_size,
                         itemsize=self._dtype.itemsize, available=_available_memory(),
                         fraction=_MEMORY_FRACTION)

    # -------------------------------------------------------- checkpoints
    def _data_fingerprint(self, X3, lengths, Y):
        """SHA-256 of the validated training data (X as float64, targets as trained on)."""
        return data_fingerprint(X3, lengths, np.asarray(Y, dtype=self._dtype))

    def _write_checkpoint(self, fingerprint):
        names = set(self.get_params(deep=False))
        state = {k: v for k, v in self.__dict__.items() if k not in names}
        state.pop("_best_params", None)
        write_checkpoint(self.checkpoint, class_name=type(self).__name__,
                         params=self.get_params(deep=False), state=state,
                         fingerprint=fingerprint)

    def _maybe_checkpoint(self, fingerprint, trainer=None, force=False):
        if self.checkpoint is None:
            return
        if force or self.n_iter_ % self.checkpoint_every == 0:
            if trainer is not None:
                trainer.sync_to_host()  # a checkpoint holds host weights and moments
            self._write_checkpoint(fingerprint)

    def _check_checkpoint_folder(self):
        """Refuse a checkpoint path whose folder is missing before training, not at the
        first checkpoint, an epoch or more into the fit."""
        path = os.fspath(self.checkpoint)
        folder = os.path.dirname(os.path.realpath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"checkpoint={path!r}: the folder {folder!r} does not exist; create it "
                "or choose another checkpoint path.")

    def _resumable_checkpoint(self):
        """The payload of an unfinished fit saved at ``checkpoint``, or None."""
        path = self.checkpoint
        if not os.path.exists(path):
            return None
        payload = _read_checkpoint(path)
        fit_state = payload["state"].get("_fit_state")
        if fit_state is None:
            return None  # partial_fit's: a new fit overwrites it
        if fit_state.get("finished"):
            # A finished member of an ensemble that has more to train resumes with the
            # next member; a finished fit is overwritten by a new one.
            n_trained = 1 + len(payload["state"].get("_other_networks") or [])
            if n_trained >= payload["params"].get("n_ensemble", 1):
                return None
        if payload["class"] != type(self).__name__:
            raise ValueError(
                f"checkpoint={os.fspath(path)!r} was written by "
                f"{payload['class']}, not {type(self).__name__}. Delete "
                "it or choose another checkpoint path."
            )
        mine = self.get_params(deep=False)
        theirs = self._with_parameters_added_later(payload["params"])
        changed = sorted(name for name in mine if name not in _RESUMABLE_PARAMS
                         and not same_param(mine[name], theirs.get(name)))
        if changed:
            raise ValueError(
                f"checkpoint={os.fspath(path)!r} holds an unfinished fit with different "
                f"hyper-parameters ({', '.join(changed)}); resuming needs the same ones. "
                "Delete the file, or choose another checkpoint path, to start a new fit."
            )
        return payload

    def _restore_state(self, state):
        names = set(self.get_params(deep=False))
        for name in [k for k in self.__dict__ if k not in names]:
            delattr(self, name)
        self.__dict__.update(state)

    # --------------------------------------------------------------- training
    def _initialize(self, X3, lengths, Y, patch_length, scaling):
        self.n_features_in_ = X3.shape[2]
        self.patch_length_ = patch_length
        self._fit_input_scaler(X3, lengths, scaling)
        self._random_state = check_random_state(self.random_state)
        self._other_networks = []
        self._new_network(Y)

    def _members(self):
        """The fitted networks: ``network_`` and the other members of an ensemble."""
        if not hasattr(self, "network_"):
            return []
        return [self.network_] + list(getattr(self, "_other_networks", []))

    @property
    def networks_(self):
        """list of LSTMNetwork: every network of the fitted ensemble, ``network_`` first
        (one network when ``n_ensemble=1``)."""
        check_is_fitted(self, "network_")
        return self._members()

    def _new_network(self, Y):
        """A new ``network_`` with new seeds, and a fresh training record for it."""
        seed_lstm, seed_head = self._random_state.randint(0, 2**31 - 1, size=2)
        lstm = _CELLS[self.cell](self._network_input_size(), self.hidden_size,
                                 num_layers=self.num_layers, bidirectional=self.bidirectional,
                                 dropout=self.dropout, dtype=self._dtype,
                                 random_state=int(seed_lstm), device=self.device,
                                 input_dropout=self._input_dropout_rate())
        sequence_output = Y.ndim == 3
        self.network_ = LSTMNetwork(lstm, Y.shape[-1], loss=self._loss,
                                    sequence_output=sequence_output,
                                    random_state=int(seed_head),
                                    readout="last" if sequence_output else self.readout,
                                    output_dropout=self._output_dropout_rate(sequence_output))
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_ = None
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self._no_improvement_count = 0
        self.validation_scores_ = None
        self._validation_epochs = None
        self.best_validation_score_ = None
        if hasattr(self, "_optimizer"):
            del self._optimizer

    def _check_network_matches(self):
        net = self.network_
        lstm = net.lstm
        current = (lstm.cell, lstm.hidden_size, lstm.num_layers, lstm.bidirectional,
                   lstm.dtype, net.readout)
        wanted = (self.cell, self.hidden_size, self.num_layers, bool(self.bidirectional),
                  self._dtype, "last" if net.sequence_output else self.readout)
        if current != wanted:
            raise ValueError(
                "warm_start=True (or partial_fit) continues training the fitted network, but "
                "cell, hidden_size, num_layers, bidirectional, dtype or readout changed "
                "since it was built: "
                f"network has {current}, parameters ask for {wanted}. Set warm_start=False "
                "to train a new network."
            )
        fitted_patch = getattr(self, "patch_length_", 1)
        if self.patch_length not in ("auto", fitted_patch):
            raise ValueError(
                f"warm_start=True (or partial_fit) continues training the fitted network, "
                f"which reads patches of patch_length_={fitted_patch} steps; "
                f"patch_length={self.patch_length} asks for another. Set warm_start=False "
                "to train a new network.")
        fitted_scaling = getattr(self, "input_scaling_", "channel")
        if self.input_scaling not in ("auto", fitted_scaling):
            raise ValueError(
                f"warm_start=True (or partial_fit) continues training the fitted network, "
                f"whose inputs were scaled with input_scaling_={fitted_scaling!r}; "
                f"input_scaling={self.input_scaling!r} asks for another. Set "
                "warm_start=False to train a new network.")

    def _apply_dropout_rates(self):
        """Give the fitted network the dropout rates of the current parameters (a warm
        start or ``partial_fit`` may change them); only once the fit's checks have passed,
        so that a refused fit leaves the network as it was."""
        net = self.network_
        net.lstm.dropout = float(self.dropout)
        net.lstm.input_dropout = self._input_dropout_rate()
        net.output_dropout = self._output_dropout_rate(net.sequence_output)

    def _fit_stochastic(self, Xs, Y, lengths, *, incremental, resume=False,
                        fingerprint=None):
        net = self.network_
        early_stopping = self.early_stopping and not incremental
        if resume:
            state = self._fit_state
        else:
            if not incremental or not hasattr(self, "_optimizer"):
                if self.solver == "sgd":
                    self._optimizer = SGDOptimizer(net.params, self.learning_rate_init,
                                                   self.momentum, self.nesterovs_momentum)
                else:
                    self._optimizer = AdamOptimizer(net.params, self.learning_rate_init,
                                                    self.beta_1, self.beta_2, self.epsilon)
            state = stochastic.new_fit_state(self.n_iter_)
            if early_stopping:
                state["split"] = self._split_validation(Y)
                if self.validation_scores_ is None:
                    self.validation_scores_ = []
                    self._validation_epochs = []  # the epoch of each score, for plots
                    self.best_validation_score_ = -np.inf
                state["best_params"] = net.get_flat_params()
            if not incremental:
                self._fit_state = state
        validation = None
        if early_stopping:
            train_idx, val_idx = state["split"]
            validation = take_batch(Xs, Y, lengths, val_idx)
        else:
            train_idx = np.arange(Xs.shape[0])
        n_train = train_idx.shape[0]
        if self.batch_size == "auto":
            batch_size = min(64, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn(f"Got batch_size={self.batch_size} larger than the "
                              f"{n_train} training samples; clipping it to {n_train}.")
            batch_size = min(self.batch_size, n_train)
        steps_per_epoch = -(-n_train // batch_size)
        config = stochastic.StochasticConfig(
            batch_size=batch_size, max_iter=self._max_iter(steps_per_epoch),
            patience=self._n_iter_no_change(steps_per_epoch), shuffle=self.shuffle,
            tol=self.tol, early_stopping=early_stopping, incremental=incremental,
            adaptive=self.learning_rate == "adaptive", adaptive_factor=_ADAPTIVE_FACTOR,
            adaptive_decays=_ADAPTIVE_DECAYS, alpha=self._alpha(batch_size, n_train),
            clip_grad_norm=self.clip_grad_norm, verbose=self.verbose,
            name=type(self).__name__)
        callbacks = stochastic.StochasticCallbacks(
            validation_score=self._validation_score,
            checkpoint=lambda trainer, force: self._maybe_checkpoint(fingerprint, trainer,
                                                                     force),
            diverged=self._diverged)
        stochastic.run_stochastic(self, Xs, Y, lengths, train_idx, validation, state,
                                  self._random_state, config, callbacks)

    #: Fewest validation sequences whose score is defined (R^2 needs two targets).
    _MIN_VALIDATION_SEQUENCES = 1

    def _validation_size(self, Y):
        """The number of sequences early stopping holds out of ``Y``; raises where that
        leaves no training sequence or too few to score."""
        n_samples = Y.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        if n_samples < 2 or n_val >= n_samples:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} "
                f"leaves no training sample out of {n_samples}; use more samples, a smaller "
                "validation_fraction or early_stopping=False."
            )
        least = 1 if Y.ndim == 3 else self._MIN_VALIDATION_SEQUENCES
        if n_val < least:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} "
                f"holds out {n_val} of {n_samples} sequences, and the validation score "
                f"needs at least {least}; use a larger validation_fraction or "
                "early_stopping=False.")
        return n_val

    def _split_validation(self, Y):
        n_samples = Y.shape[0]
        n_val = self._validation_size(Y)
        stratify = self._stratify_labels(Y)
        idx = np.arange(n_samples)
        try:
            return train_test_split(idx, test_size=n_val, random_state=self._random_state,
                                    stratify=stratify)
        except ValueError:  # classes too small to stratify
            return train_test_split(idx, test_size=n_val, random_state=self._random_state)

    def _diverged(self, epoch, step, what):
        return diverged(epoch, step, what, learning_rate_init=self.learning_rate_init,
                        clip_grad_norm=self.clip_grad_norm, n_iter=self.n_iter_)

    def _fit_lbfgs(self, Xs, Y, lengths, *, resume=False, fingerprint=None):
        if resume:
            state = self._fit_state
        else:
            state = lbfgs.new_fit_state(self.n_iter_)
            self._fit_state = state
        checkpoint = None
        if self.checkpoint is not None:
            checkpoint = lambda force: self._maybe_checkpoint(fingerprint,  # noqa: E731
                                                              force=force)
        config = lbfgs.LBFGSConfig(max_iter=self._max_iter(), max_fun=self.max_fun,
                                   tol=self.tol, alpha=self._alpha(len(Xs), len(Xs)),
                                   verbose=self.verbose,
                                   checkpoint_every=self.checkpoint_every,
                                   checkpoint=checkpoint)
        lbfgs.run_lbfgs(self, Xs, Y, lengths, state, config)

    # ------------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        return tags

    def _more_tags(self):
        # scikit-learn >= 1.6 reads __sklearn_tags__; "_xfail_checks" keeps, next to
        # the tags, the reason for each estimator check that does not apply here
        # (tests/estimators/test_sklearn_checks.py passes it as ``expected_failed_checks``).
        return {"_xfail_checks": dict(_NOT_APPLICABLE_CHECKS)}


_TWO_D_REASON = (
    "A 2-D X is read as n_samples univariate series of n_timesteps = X.shape[1] steps, "
    "so n_features_in_ is 1 (the channels), not X.shape[1]; and a recurrent model "
    "accepts any sequence length, so a column less is a shorter series, not a missing "
    "feature. The feature-count check itself is enforced on the channel axis and "
    "tested in tests/estimators/test_estimators.py::test_wrong_n_features_raises."
)

_NOT_APPLICABLE_CHECKS = {
    "check_n_features_in": _TWO_D_REASON,
    "check_n_features_in_after_fitting": _TWO_D_REASON,
    "check_estimators_partial_fit_n_features": _TWO_D_REASON,
}
