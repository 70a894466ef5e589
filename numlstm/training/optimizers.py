"""First-order optimizers and gradient clipping used by the estimators.

Each optimizer is a small class. :class:`BaseOptimizer` owns the public
step, :meth:`BaseOptimizer.update_params`, which adds the updates to the
parameter arrays in place; subclasses only say how an update is computed
from the gradients (``_get_updates``). Adding an optimizer therefore touches
one class and nothing else.

The parameters are a list of NumPy arrays (for the estimators: the LSTM's
``flat_parameters`` and the output layer's weights and intercepts); the
gradients are a list of arrays of the same shapes, in the same order.
"""

import numpy as np

__all__ = ["BaseOptimizer", "SGDOptimizer", "AdamOptimizer", "clip_grad_norm", "global_norm"]


class BaseOptimizer:
    """Base class of the first-order optimizers.

    Parameters
    ----------
    learning_rate_init : float, default=0.001
        The initial learning rate, the step size of the updates.

    Attributes
    ----------
    learning_rate : float
        The current learning rate.
    """

    def __init__(self, learning_rate_init=0.001):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)

    def update_params(self, params, grads):
        """Update the parameters in place with the given gradients.

        Parameters
        ----------
        params : list of ndarray
            The parameter arrays; each one is modified in place.
        grads : list of ndarray
            The gradients of the loss with respect to ``params``, same
            length, order and shapes.
        """
        updates = self._get_updates(grads)
        for param, update in zip(params, updates):
            param += update

    def _get_updates(self, grads):
        """Return the updates to add to the parameters (subclasses)."""
        raise NotImplementedError

    def iteration_ends(self, time_step):
        """Hook called at the end of each epoch.

        Parameters
        ----------
        time_step : int
            Number of training samples seen so far.
        """

    def trigger_stopping(self, msg, verbose):
        """Decide whether training stops after no improvement.

        Parameters
        ----------
        msg : str
            Reason for stopping, printed when ``verbose``.
        verbose : bool
            Whether to print ``msg``.

        Returns
        -------
        is_stopping : bool
            Always True for the constant learning rate used here.
        """
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDOptimizer(BaseOptimizer):
    """Stochastic gradient descent with momentum and Nesterov's momentum.

    Parameters
    ----------
    params : list of ndarray
        The parameter arrays, used to initialise the velocities.
    learning_rate_init : float, default=0.1
        The (constant) learning rate.
    momentum : float, default=0.9
        Momentum in [0, 1]; 0 gives plain SGD.
    nesterov : bool, default=True
        Whether to use Nesterov's momentum (look-ahead form, as in
        scikit-learn's ``MLPRegressor``).

    Attributes
    ----------
    velocities : list of ndarray
        The velocity of each parameter array.

    References
    ----------
    Sutskever, I., Martens, J., Dahl, G. and Hinton, G. (2013). On the
    importance of initialization and momentum in deep learning. ICML.
    """

    def __init__(self, params, learning_rate_init=0.1, momentum=0.9, nesterov=True):
        super().__init__(learning_rate_init)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocities = [np.zeros_like(param) for param in params]

    def _get_updates(self, grads):
        """Return the momentum updates and advance the velocities.

        Parameters
        ----------
        grads : list of ndarray
            Gradients, in the order of the parameters.

        Returns
        -------
        updates : list of ndarray
            Values to add to the parameters.
        """
        lr, mu = self.learning_rate, self.momentum
        for velocity, grad in zip(self.velocities, grads):
            velocity *= mu
            velocity -= lr * grad
        if self.nesterov:
            return [mu * velocity - lr * grad for velocity, grad in zip(self.velocities, grads)]
        return [velocity.copy() for velocity in self.velocities]


class AdamOptimizer(BaseOptimizer):
    """Adam: adaptive moment estimation with bias correction.

    Parameters
    ----------
    params : list of ndarray
        The parameter arrays, used to initialise the moment vectors.
    learning_rate_init : float, default=0.001
        The step size.
    beta_1 : float, default=0.9
        Decay rate of the first-moment estimate, in [0, 1).
    beta_2 : float, default=0.999
        Decay rate of the second-moment estimate, in [0, 1).
    epsilon : float, default=1e-8
        Added to the denominator for numerical stability.

    Attributes
    ----------
    t : int
        Number of updates done so far.
    ms, vs : list of ndarray
        First and second moment estimates of each parameter array.

    References
    ----------
    Kingma, D. P. and Ba, J. (2015). Adam: A method for stochastic
    optimization. ICLR. https://arxiv.org/abs/1412.6980
    """

    def __init__(self, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = [np.zeros_like(param) for param in params]
        self.vs = [np.zeros_like(param) for param in params]

    def _get_updates(self, grads):
        """Return the bias-corrected Adam updates and advance the moments.

        Parameters
        ----------
        grads : list of ndarray
            Gradients, in the order of the parameters.

        Returns
        -------
        updates : list of ndarray
            Values to add to the parameters.
        """
        b1, b2 = self.beta_1, self.beta_2
        for m, v, grad in zip(self.ms, self.vs, grads):
            m *= b1
            m += (1.0 - b1) * grad
            v *= b2
            v += (1.0 - b2) * np.square(grad)
        self._advance()
        return [-self.learning_rate * m / (np.sqrt(v) + self.epsilon)
                for m, v in zip(self.ms, self.vs)]

    def _advance(self):
        """Count one more update and return its bias-corrected step size (also kept in
        :attr:`learning_rate`); shared with the GPU update of
        :mod:`numlstm.training.device_trainer`."""
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        # Bias correction folded into the step size (Kingma & Ba, Sec. 2).
        self.learning_rate = (self.learning_rate_init * np.sqrt(1.0 - b2**self.t)
                              / (1.0 - b1**self.t))
        return self.learning_rate


def global_norm(arrays):
    """Euclidean norm of several arrays taken together, computed in float64.

    Parameters
    ----------
    arrays : list of ndarray
        The arrays (for example the gradients of every parameter).

    Returns
    -------
    norm : float
        ``sqrt(sum(sum(a ** 2) for a in arrays))``; ``nan`` or ``inf`` when an
        array holds non-finite values.
    """
    total = 0.0
    for a in arrays:
        flat = np.asarray(a, dtype=np.float64).ravel()
        total += float(np.dot(flat, flat))
    return float(np.sqrt(total))


def clip_grad_norm(grads, max_norm):
    """Scale gradients in place so that their global norm is at most ``max_norm``.

    The gradients are multiplied by ``max_norm / norm`` when their global
    norm exceeds ``max_norm``. The result is exact: after the call
    ``global_norm(grads) <= max_norm`` holds (a rounding excess, which float32
    arithmetic can leave, is removed by a further tiny shrink).

    Parameters
    ----------
    grads : list of ndarray
        Floating-point gradient arrays, modified in place.
    max_norm : float
        The largest global norm allowed, >= 0.

    Returns
    -------
    total_norm : float
        The global norm before clipping (``nan``/``inf`` are returned as
        they are and leave ``grads`` untouched, so the caller can stop).

    References
    ----------
    Pascanu, R., Mikolov, T. and Bengio, Y. (2013). On the difficulty of
    training recurrent neural networks. ICML.
    """
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be a non-negative number, got {max_norm!r}.")
    total_norm = global_norm(grads)
    if not np.isfinite(total_norm) or total_norm <= max_norm:
        return total_norm
    scale = max_norm / total_norm
    norm = total_norm
    eps = max(np.finfo(g.dtype).eps for g in grads)
    while norm > max_norm:
        for g in grads:
            g *= scale
        norm = global_norm(grads)
        scale = (max_norm / norm) * (1.0 - 4.0 * eps) if norm > 0 else 0.0
    return total_norm
