"""The network and solver parameters the sktime wrappers share with numlstm's estimators."""

import numpy as np

#: Settings small enough for sktime's estimator checks to run quickly.
TEST_PARAMS = [
    {"hidden_size": 4, "max_iter": 2, "batch_size": 8, "random_state": 0},
    {"hidden_size": 3, "cell": "gru", "bidirectional": True, "max_iter": 2,
     "batch_size": 8, "random_state": 1, "readout": "mean_max",
     "patch_length": 2, "n_ensemble": 2},
]


class NetworkParameters:
    """``__init__`` holding the parameters of :class:`numlstm.LSTMClassifier` /
    :class:`numlstm.LSTMRegressor`, with their names and defaults (see those classes for
    what each does), and the inner estimator built from them."""

    def __init__(self, hidden_size=64, num_layers=1, bidirectional=False, dropout=0.0,
                 solver="adam", learning_rate="adaptive", learning_rate_init=0.005,
                 momentum=0.9, nesterovs_momentum=True, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-08, batch_size="auto", max_iter="auto", max_fun=15000,
                 alpha="auto", clip_grad_norm=1.0, shuffle=True, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change="auto", tol=0.0001,
                 random_state=None, verbose=0, dtype="float32", device="cpu", cell="lstm",
                 readout="last", patch_length="auto", n_ensemble=1, input_dropout="auto",
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
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.device = device
        self.cell = cell
        self.readout = readout
        self.patch_length = patch_length
        self.n_ensemble = n_ensemble
        self.input_dropout = input_dropout
        self.input_scaling = input_scaling
        self.output_dropout = output_dropout
        super().__init__()

    def __setstate__(self, state):
        # A wrapper pickled before a parameter existed: the value its model was trained
        # with, as the estimators do (otherwise get_params and clone fail).
        from ..estimators._base import _PARAMETERS_ADDED_LATER

        self.__dict__.update({**_PARAMETERS_ADDED_LATER, **state})

    def _inner(self, estimator_class):
        """A new numlstm estimator with this object's parameters."""
        names = NetworkParameters.__init__.__code__.co_varnames[
            1:NetworkParameters.__init__.__code__.co_argcount]
        params = {name: getattr(self, name) for name in names}
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = params["random_state"].randint(2**31 - 1)
        return estimator_class(**params)
