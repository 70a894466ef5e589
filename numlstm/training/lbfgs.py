"""Full-batch training with SciPy's L-BFGS-B (``solver="lbfgs"``).

:func:`run_lbfgs` updates the fitted record (``n_iter_``, ``t_``, ``loss_``,
``loss_curve_``, ``best_loss_``) as :func:`numlstm.training.stochastic.run_stochastic`
does, keeps the best finite point it evaluated, and backs the line search off from steps
that overflow.
"""

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from .._utils.blas_threads import single_threaded_blas
from .errors import TrainingDivergedError

__all__ = ["LBFGSConfig", "new_fit_state", "run_lbfgs"]


@dataclass(frozen=True)
class LBFGSConfig:
    """Settings of one call of :func:`run_lbfgs`.

    ``checkpoint_every`` counts iterations; ``checkpoint(force)`` saves a checkpoint of
    the record (None: no checkpoints).
    """

    max_iter: int
    max_fun: int
    tol: float
    alpha: float
    verbose: int
    checkpoint_every: int
    checkpoint: Callable = None


def new_fit_state(start_iter):
    """What a resumed L-BFGS fit needs besides the fitted record."""
    return {"start_iter": start_iter, "finished": False}


def run_lbfgs(record, Xs, Y, lengths, state, config):
    """Minimise the full-batch loss of ``record.network_`` from its current weights.

    Parameters
    ----------
    record : estimator
        The fitted record, updated in place.
    Xs, Y, lengths : ndarrays
        Standardised sequences, targets, lengths or ``None``.
    state : dict
        :func:`new_fit_state`, possibly restored from a checkpoint; updated in place.
    config : LBFGSConfig
    """
    net = record.network_
    remaining = config.max_iter - (record.n_iter_ - state["start_iter"])
    if state["finished"]:
        return
    if remaining <= 0:
        # Resumed from a checkpoint written at the last iteration: the fit is done.
        _finish(record, net, Xs, Y, lengths, state, config)
        return
    x0 = net.get_flat_params().astype(np.float64)
    best = {"loss": np.inf, "params": x0.copy()}
    evaluations = [0]
    run_start = record.n_iter_
    t_start = record.t_

    def loss_grad(w):
        net.set_flat_params(w)
        loss = net.loss_and_gradient(Xs, Y, lengths, alpha=config.alpha)
        grad = net.get_flat_grads().astype(np.float64)
        evaluations[0] += 1
        if not (np.isfinite(loss) and np.isfinite(grad).all()):
            # Let the line search back off from a step that overflowed.
            return np.finfo(np.float64).max, np.zeros_like(w)
        if loss < best["loss"]:
            best["loss"], best["params"] = loss, w.copy()
        return loss, grad

    def callback(intermediate_result):
        record.loss_curve_.append(float(intermediate_result.fun))
        record.n_iter_ += 1
        # The record as a checkpoint written now should hold it.
        record.t_ = t_start + evaluations[0] * Xs.shape[0]
        record.loss_ = float(intermediate_result.fun)
        record.best_loss_ = min(record.best_loss_, record.loss_)
        if config.verbose:
            now = time.perf_counter()
            print(f"Iteration {record.n_iter_ - run_start}: loss = "
                  f"{intermediate_result.fun:.6f}, validation score = n/a, "
                  f"{now - last[0]:.2f} s", flush=True)
            last[0] = now
        if config.checkpoint is not None and record.n_iter_ % config.checkpoint_every == 0:
            current = net.get_flat_params()
            net.set_flat_params(intermediate_result.x)
            config.checkpoint(True)
            net.set_flat_params(current)

    start = time.perf_counter()
    last = [start]
    n_before = len(record.loss_curve_)
    try:
        # L-BFGS's vector arithmetic is small next to the kernels; on BLAS threads it
        # would fight numba's spinning workers for the cores.
        with single_threaded_blas():
            result = scipy.optimize.minimize(
                loss_grad, x0, method="L-BFGS-B", jac=True, callback=callback,
                options={"maxiter": remaining, "maxfun": config.max_fun,
                         "gtol": config.tol},
            )
    except KeyboardInterrupt:
        net.set_flat_params(best["params"])
        record.t_ = t_start + evaluations[0] * Xs.shape[0]
        if np.isfinite(best["loss"]):
            record.loss_ = float(best["loss"])
            record.best_loss_ = min(record.best_loss_, record.loss_)
        if config.verbose:
            print(f"Training interrupted after {record.n_iter_ - run_start} L-BFGS "
                  "iterations; keeping the best weights so far.", flush=True)
        raise
    if not np.isfinite(best["loss"]):
        net.set_flat_params(x0)
        del record.loss_curve_[n_before:]
        record.n_iter_ = run_start
        raise TrainingDivergedError(
            "Training diverged: the loss was NaN or infinite at every point L-BFGS "
            "evaluated. The estimator keeps the weights it had before this call.",
            step=evaluations[0],
        )
    params = result.x if np.isfinite(result.fun) and result.fun <= best["loss"] else best[
        "params"]
    net.set_flat_params(params)
    if not net.all_finite():
        net.set_flat_params(best["params"])
    record.n_iter_ = run_start + max(int(result.nit), 1)
    record.t_ = t_start + evaluations[0] * Xs.shape[0]
    record.loss_ = float(min(result.fun, best["loss"]))
    if len(record.loss_curve_) == n_before:
        record.loss_curve_.append(record.loss_)
    record.best_loss_ = min(record.best_loss_, record.loss_)
    _finish(record, net, Xs, Y, lengths, state, config)
    if config.verbose:
        print(f"L-BFGS finished: {result.nit} iterations, loss = {record.loss_:.6f}, "
              f"{time.perf_counter() - start:.2f} s", flush=True)
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iterations "
            f"(status={result.status}): {result.message}. Increase max_iter or "
            "max_fun, or scale the data.", ConvergenceWarning,
        )


def _finish(record, net, Xs, Y, lengths, state, config):
    """End the fit: the record's loss where it has none (resumed with no iteration left
    from a checkpoint of an earlier version) and a final checkpoint that says the fit is
    done."""
    if record.loss_ is None:
        record.loss_ = float(net.loss_and_gradient(Xs, Y, lengths, alpha=config.alpha))
        record.best_loss_ = min(record.best_loss_, record.loss_)
        if not record.loss_curve_:
            record.loss_curve_.append(record.loss_)
    state["finished"] = True
    if config.checkpoint is not None:
        config.checkpoint(True)
