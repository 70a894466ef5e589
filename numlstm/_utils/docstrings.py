"""Docstring sections that several public classes share, written once: the estimators'
parameters and notes, and the recurrent layers' common parameters and attributes.

A class docstring holds a line ``%(name)s`` (indented like the text that replaces it) for
each shared section; :func:`fill_shared_sections` puts the section in.
"""

__all__ = ["fill_shared_sections"]

_SECTIONS = {
    "network_and_solver_parameters": """\
hidden_size : int, default=64
    Number of units of each LSTM layer (and direction).
num_layers : int, default=1
    Number of stacked LSTM layers.
bidirectional : bool, default=False
    Whether each layer also reads the sequences backwards.
dropout : float, default=0.0
    Dropout probability on the inputs of LSTM layers after the first
    (only active while training; needs ``num_layers > 1``).
solver : {"adam", "sgd", "lbfgs"}, default="adam"
    Optimizer. "adam" and "sgd" use mini-batches and support
    ``partial_fit`` and early stopping; "lbfgs" runs
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on the flat parameter
    vector over the whole training set (it needs ``dropout=0`` when
    ``num_layers > 1``).
learning_rate : {"adaptive", "constant"}, default="adaptive"
    Step-size schedule of "adam" and "sgd". "constant" keeps
    ``learning_rate_init`` and stops training the first time the
    stopping rule (``n_iter_no_change``) fires. "adaptive" divides the
    step size by 5 at that point instead, goes back to the weights of the
    best epoch and trains on; the third time the rule fires, training
    stops. Smaller steps at the end let the weights settle in the
    minimum the large steps found instead of jittering around it.
learning_rate_init : float, default=0.005
    Initial step size of "adam" and "sgd".
momentum : float, default=0.9
    Momentum of "sgd", in [0, 1].
nesterovs_momentum : bool, default=True
    Whether "sgd" uses Nesterov's momentum.
beta_1 : float, default=0.9
    Decay of Adam's first-moment estimate, in [0, 1).
beta_2 : float, default=0.999
    Decay of Adam's second-moment estimate, in [0, 1).
epsilon : float, default=1e-8
    Numerical-stability term of Adam.
batch_size : int or "auto", default="auto"
    Largest mini-batch of "adam"/"sgd"; "auto" is ``min(64, n_samples)``.
    Each epoch is cut into ``ceil(n_samples / batch_size)`` mini-batches
    of equal size (within one sequence), so that no small remainder
    batch makes a noisy step with a heavily weighted penalty.
max_iter : int or "auto", default="auto"
    Maximum number of epochs ("adam"/"sgd") or iterations ("lbfgs").
    "auto" allows 100 epochs, or as many as make 1000 optimizer steps
    when that is more: on a small training set, where an epoch is one or
    a few mini-batches, the budget counts updates rather than passes
    over the data. "lbfgs": 100 iterations.
max_fun : int, default=15000
    Maximum number of loss evaluations of "lbfgs".
alpha : float or "auto", default="auto"
    L2 penalty on the weights (biases are not penalised), scaled as in
    scikit-learn's MLP: ``0.5 * alpha * ||W||^2 / batch_size`` on each
    mini-batch's mean loss. "auto" is ``0.1 * b / n_samples``, ``b`` the
    mean size of an epoch's mini-batches (``batch_size`` when it divides
    ``n_samples``; ``n_samples`` of the training data, after an
    early-stopping split): a penalty of ``0.05 * ||W||^2 / n_samples`` on
    every mini-batch's mean loss, however the epoch is cut: strong on
    a few dozen sequences, which a network otherwise memorises, and
    fading as the data grow. Chosen on held-out training data of the
    data sets of ``benchmarks/real_data.py``.
clip_grad_norm : float or None, default=1.0
    Largest global norm of the gradient of a mini-batch; larger
    gradients are scaled down (Pascanu et al., 2013). None disables
    clipping.
shuffle : bool, default=True
    Whether to shuffle the samples at every epoch.""",
    "stopping_and_run_parameters": """\
validation_fraction : float, default=0.1
    Fraction of the training data held out for early stopping.
n_iter_no_change : int or "auto", default="auto"
    Number of epochs without an improvement of at least ``tol`` (in
    training loss, or validation score with early stopping) before the
    step size is divided (``learning_rate="adaptive"``) or training
    stops. "auto" waits 10 epochs, or as many as make 50 optimizer steps
    when that is more (small training sets, where the loss can sit near
    its starting value for tens of steps before the network finds the
    signal).
tol : float, default=1e-4
    Tolerance of the stopping criterion (and L-BFGS's gradient tolerance).
warm_start : bool, default=False
    Whether ``fit`` continues from the fitted network instead of
    starting a new one. The weights, the standardisation and the random
    generator carry over, but each ``fit`` call starts a fresh optimizer
    (Adam moments, SGD velocities) and runs ``max_iter`` more epochs, so
    ``fit`` twice with ``warm_start=True`` is reproducible but does not
    equal one ``fit`` with twice the epochs (``partial_fit`` keeps the
    optimizer; resuming from a ``checkpoint`` is exact). See Notes.
random_state : int, RandomState instance or None, default=None
    Seeds the weights, the dropout masks, the shuffling and the
    validation split. The same seed and data give identical results
    (bit for bit), run after run and, on the CPU, at any number of
    threads; see Notes.
verbose : int, default=0
    With 1 or more, report every epoch: loss, validation score and
    seconds. When the optional package tqdm is installed and the output
    is a terminal, as a progress bar; otherwise one printed line per
    epoch.
dtype : {"float32", "float64"}, default="float32"
    Float type of the network's weights and computations.
device : {"auto", "cpu", "cuda"}, default="cpu"
    Where the LSTM kernels run (passed to :class:`numlstm.LSTM`); "cuda"
    raises an error that says why when no usable GPU is found.
checkpoint : str, os.PathLike or None, default=None
    File where ``fit`` saves its full training state (weights, optimizer
    and random generator state, curves, early-stopping split) every
    ``checkpoint_every`` epochs and at the end. Each save is atomic: a
    temporary file in the same folder, then ``os.replace``, so a crash
    or Ctrl-C never leaves a partial file. When ``fit`` finds an
    unfinished run at this path, it resumes it (same data and
    hyper-parameters required, else a ``ValueError``; only ``max_iter``,
    ``verbose``, ``tol``, ``n_iter_no_change``, ``device``,
    ``warm_start`` and the checkpoint settings may change) and the result
    is the one the uninterrupted run would have given ("lbfgs" restarts
    its line search from the saved weights instead). A finished run is
    overwritten by a new fit. ``partial_fit`` saves too but never
    resumes; :func:`numlstm.estimators.load_checkpoint` reads any
    checkpoint back. Use one path per model (not a shared path in
    ``GridSearchCV``). Checkpoints hold arrays and JSON (the format of
    :func:`numlstm.save`), never code; a damaged one raises ModelFileError.
checkpoint_every : int, default=1
    Epochs ("lbfgs": iterations) between two checkpoint saves.
cell : {"lstm", "gru", "rnn"}, default="lstm"
    The recurrent cell: :class:`numlstm.LSTM`, :class:`numlstm.GRU`, or a
    plain (Elman, tanh) :class:`numlstm.RNN`. The gated cells keep
    information over long sequences where the plain RNN loses it (see
    ``benchmarks/long_memory.py``); the others serve as baselines.
readout : {"last", "mean", "max", "mean_max"}, default="last"
    What the output layer reads of each sequence (one output per
    sequence; sequence targets read every step and ignore it). "last":
    the final hidden state of each direction. "mean" / "max": the mean /
    the largest value of each unit of the last layer's output over the
    sequence's valid steps; "mean_max": both side by side. Pooling lets
    the output layer (and the gradient) reach every step directly, which
    helps on long series where the pattern that decides the class can
    occur anywhere.
patch_length : int or "auto", default="auto"
    Number of consecutive time steps the network reads as one step (their
    values side by side): a series of ``T`` steps becomes
    ``ceil(T / patch_length)`` steps of ``patch_length * n_features``
    values, the last one filled up with zeros. "auto" is 1 for series of
    up to 64 steps and otherwise the smallest length that makes the
    longest training series at most 64 steps. Long series then train
    many times faster, and a pattern that spans hundreds of raw steps
    spans a few network steps. Sequence targets (one output per step)
    need 1; "auto" gives 1 for them. The fitted value is
    ``patch_length_``.
n_ensemble : int, default=1
    Number of networks trained, one after the other, with different
    seeds drawn from ``random_state``; predictions average their
    probabilities (classifier) or predictions (regressor). Five members
    raised the mean held-out score on the small data sets of
    ``benchmarks/real_data.py`` and narrowed the spread over seeds, for
    five times the fit time (see the real-data page of the
    documentation). ``network_`` is the last member trained (the
    training record, ``n_iter_`` and ``loss_curve_``..., is its own) and
    ``networks_`` lists them all. ``warm_start`` and ``partial_fit``
    continue one network: they need ``n_ensemble=1`` (``partial_fit`` is
    not available otherwise).
input_dropout : float or "auto", default="auto"
    Probability of zeroing each element of the network's input (the
    standardised features, in patches) while training, a new mask per
    mini-batch (inverted dropout: kept elements are scaled by
    ``1 / (1 - input_dropout)``); predictions use the whole input.
    "auto" gives 0.1 for :class:`LSTMClassifier` and 0 for
    :class:`LSTMRegressor` and for ``solver="lbfgs"``, whose line search
    needs a deterministic loss. On held-out parts of the training sets
    of ``benchmarks/real_data.py``, 0.1 raised the mean accuracy over the
    nine classification sets (78.5 to 81.7) but lowered the regression
    score on Tecator (see the real-data page of the documentation).
input_scaling : {"auto", "channel", "series"}, default="auto"
    How the input is scaled before the network reads it. "channel":
    each channel is standardised with its mean and standard deviation
    over the training set. "series": each series (and channel) is
    scaled by its own mean and standard deviation, the z-normalisation
    usual in time-series classification, so that series whose levels
    or amplitudes differ by orders of magnitude show their shapes in
    the same range; the level and the logarithm of the amplitude of
    each series and channel are given to the network as two more
    inputs at every step, so nothing is lost. A series' scaling needs
    all its steps, so :meth:`stream` is not available with "series".
    "auto" looks at the training set: "series" when most of its
    variance (mean share over the channels) lies between the series'
    levels and amplitudes rather than within the series, "channel"
    otherwise, as for data normalised beforehand, and always "channel"
    for sequence targets (an output at every step, which must not
    depend on the steps after it). On the held-out parts of the
    training sets of ``benchmarks/real_data.py`` (three cuts, three
    seeds), "series" raised PLAID from 46.4 to 70.4 and Tecator from
    58.6 to 73.0 (both below a share of 0.3) but lowered UnitTest from
    98.1 to 81.5 and Covid3Month from -3.7 to -19.5 (shares 0.95 and
    0.87); see the real-data page of the documentation. Models saved
    before the option existed keep "channel". The fitted value is
    ``input_scaling_``.
output_dropout : float or "auto", default="auto"
    Probability of zeroing each input of the dense output layer (each
    element of the features ``readout`` makes) while training, a new mask
    per mini-batch (inverted dropout, like ``input_dropout``); predictions
    use every feature. "auto" gives 0.1 for one output per sequence, and
    0 for sequence targets and for ``solver="lbfgs"``. On held-out parts
    of the training sets of ``benchmarks/real_data.py`` (three cuts, three
    seeds), 0.1 raised the mean score over the eleven sets from 74.2 to
    75.0 (most on Tecator, BasicMotions, Covid3Month and
    ItalyPowerDemand; GunPoint, OSULeaf and ACSF1 lost 0.7 to 1.5
    points); see the real-data page of the documentation. Models saved
    before the option existed keep 0.""",
    "notes": """\
**Divergence.** Every mini-batch step checks the loss, the gradient and
the updated weights. When a NaN or infinity appears, training stops on
that step with a :class:`~numlstm.estimators.TrainingDivergedError`
(an error, not a warning); the estimator stays fitted with the last
finite weights (those of the last step whose loss and gradient were
finite) and ``n_iter_`` counts the completed epochs.

**Interruption.** A ``KeyboardInterrupt`` (Ctrl-C) during ``fit`` is
re-raised once the estimator holds the best weights so far: those of
the epoch with the best validation score (``early_stopping``) or the
lowest training loss, or the current weights when no epoch of this call
completed. ``n_iter_``, ``loss_curve_`` and ``t_`` tell how far it got,
and ``predict`` works. Set ``checkpoint`` to continue the run later.

**Threads and processes.** ``predict`` and the other prediction methods
may be called from several threads on one fitted estimator; the calls
run one after the other (each already uses every core) and give the
same answers as sequential calls. Predictions go through the network
in chunks of bounded memory, so predicting on millions of sequences
needs little more than the input and the output.

**Reproducibility.** With an int ``random_state`` and the same data,
``fit`` gives bit-identical weights and predictions in every run and
process; so do repeated ``warm_start`` fits and ``partial_fit``
sequences, and a fit resumed from a checkpoint equals the
uninterrupted one. On the CPU this holds at any number of Numba
threads (``numba.set_num_threads`` or the ``NUMBA_NUM_THREADS``
variable): the threads share out the work of each mini-batch, but the
weight gradients are added up over fixed blocks of sequences in an
order that the thread count does not change. The recurrent layers of
a given model compute each sequence alone, so its predictions do not
depend on the thread count or on the other sequences of a batch
beyond the rounding of the dense output layer.""",
    "layer_size_parameters": """\
input_size : int
    Number of features of each timestep.
hidden_size : int
    Number of units ``H`` of each layer and direction.
num_layers : int, default=1
    Number of stacked layers; layer ``k > 0`` reads the outputs of layer ``k - 1``.""",
    "layer_direction_parameters": """\
bidirectional : bool, default=False
    Add a second direction per layer that reads the sequence backwards; outputs of
    both directions are concatenated (forward first).
dropout : float, default=0.0
    Probability of zeroing an element of the inputs of layers ``k > 0`` while training
    (inverted dropout, as in PyTorch).
dtype : {np.float32, np.float64}, default=np.float32
    Float type of weights and computations.""",
    "layer_seed_and_device_parameters": """\
random_state : int, numpy Generator or RandomState, default=None
    Seeds weight initialisation (uniform in ``±1/sqrt(hidden_size)``, as in PyTorch)
    and dropout masks.
device : {"cpu", "cuda", "auto"}, default="cpu"
    Where the kernels run; ``"auto"`` picks CUDA when a GPU is usable.""",
    "layer_input_dropout_parameter": """\
input_dropout : float, default=0.0
    Probability of zeroing an element of the first layer's input while training
    (inverted dropout, drawn like ``dropout``'s masks). Not part of PyTorch's layers:
    :meth:`to_torch` leaves it out, which changes nothing in inference.""",
    "single_state_attributes": """\
n_states : int
    1: the hidden state ``h``.
output_size : int
    Features per step of ``out``: ``num_directions * hidden_size``.
num_directions : int
    1, or 2 when bidirectional.
training : bool
    Whether dropout is active; see :meth:`train` and :meth:`eval`.
flat_parameters, flat_gradient : ndarrays of shape (n_parameters,)
    Every weight (and its gradient after :meth:`backward`) in one vector.""",
}


def fill_shared_sections(cls):
    """Class decorator: replace each ``%(name)s`` line of ``cls.__doc__`` by that section.

    Raises
    ------
    KeyError
        If a marker names no known section.
    """
    if cls.__doc__ is None:  # docstrings stripped (python -OO)
        return cls
    lines = []
    for line in cls.__doc__.split("\n"):
        stripped = line.strip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            indent = line[:len(line) - len(line.lstrip())]
            section = _SECTIONS[stripped[2:-2]]
            lines.extend(indent + text if text else text for text in section.split("\n"))
        else:
            lines.append(line)
    cls.__doc__ = "\n".join(lines)
    return cls
