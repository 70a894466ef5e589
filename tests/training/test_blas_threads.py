"""Training runs its host arithmetic on one BLAS thread, and gives the user's setting back."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from numlstm import LSTMRegressor
from numlstm._utils.blas_threads import single_threaded_blas
from numlstm.nn.network import LSTMNetwork

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 6, 2))
Y = X[:, :, 0].sum(axis=1)


def _blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info()
                   if lib["user_api"] == "blas"})


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fit_steps_see_one_blas_thread(solver, monkeypatch):
    if not _blas_threads():
        pytest.skip("no BLAS library reports to threadpoolctl here")
    seen = []
    original = LSTMNetwork.loss_and_gradient

    def spy(self, *args, **kwargs):
        seen.append(_blas_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LSTMNetwork, "loss_and_gradient", spy)
    with threadpool_limits(limits=2, user_api="blas"):
        LSTMRegressor(hidden_size=4, max_iter=3, solver=solver, random_state=0).fit(X, Y)
        after = _blas_threads()
    assert seen and all(threads == [1] for threads in seen)
    assert after == [2]  # the setting the user had


def test_guard_nests_and_restores_on_error():
    if not _blas_threads():
        pytest.skip("no BLAS library reports to threadpoolctl here")
    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(RuntimeError):
            with single_threaded_blas():
                with single_threaded_blas():
                    assert _blas_threads() == [1]
                assert _blas_threads() == [1]  # the outer use still holds it
                raise RuntimeError
        assert _blas_threads() == [2]
