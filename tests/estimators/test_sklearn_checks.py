"""scikit-learn's estimator checks over both estimators, with default parameters.

Except one: ``max_iter=100`` caps every fit at 100 epochs, the budget that
``max_iter="auto"`` gives any training set of more than 576 sequences. The checks fit
about two hundred models on data sets of 10 to 150 samples, where "auto" allows up to
1000 optimizer steps (1000 epochs of one mini-batch) so that small real data sets get
enough updates; uncapped, the checks took 17 minutes on a busy two-core machine and
test nothing more. scikit-learn's own common tests cap ``max_iter`` the same way.

A check that does not apply carries its written reason in the estimator's tags
(``_more_tags()["_xfail_checks"]``, next to ``__sklearn_tags__``); what it would
have verified is covered elsewhere (the reason names the test).
"""

import pytest
from sklearn.utils.estimator_checks import (check_methods_sample_order_invariance,
                                            check_methods_subset_invariance,
                                            parametrize_with_checks)

from numlstm.estimators import LSTMClassifier, LSTMRegressor


def _not_applicable(estimator):
    return estimator._more_tags()["_xfail_checks"]


def test_every_not_applicable_check_has_a_reason():
    for est in (LSTMRegressor(), LSTMClassifier()):
        reasons = _not_applicable(est)
        assert reasons, "expected the documented exceptions"
        for name, reason in reasons.items():
            assert name.startswith("check_") and len(reason) > 80
            assert "tests/" in reason  # each names the test covering the behaviour


#: The one non-default parameter of the checks (see the module docstring).
CHECKS_MAX_ITER = 100


@parametrize_with_checks([LSTMRegressor(max_iter=CHECKS_MAX_ITER),
                          LSTMClassifier(max_iter=CHECKS_MAX_ITER)],
                         expected_failed_checks=_not_applicable)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", [check_methods_subset_invariance,
                                   check_methods_sample_order_invariance])
@pytest.mark.parametrize("Estimator", [LSTMRegressor, LSTMClassifier])
def test_batch_invariance_checks_pass_in_float64(Estimator, check):
    check(Estimator.__name__, Estimator(dtype="float64", max_iter=CHECKS_MAX_ITER))
