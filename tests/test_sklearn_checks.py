"""scikit-learn's estimator checks over both estimators, with default parameters.

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


@parametrize_with_checks([LSTMRegressor(), LSTMClassifier()],
                         expected_failed_checks=_not_applicable)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", [check_methods_subset_invariance,
                                   check_methods_sample_order_invariance])
@pytest.mark.parametrize("Estimator", [LSTMRegressor, LSTMClassifier])
def test_batch_invariance_checks_pass_in_float64(Estimator, check):
    check(Estimator.__name__, Estimator(dtype="float64"))
