"""Tests of numlstm.training.optimizers: SGD (momentum, Nesterov), Adam, gradient clipping."""

import numpy as np
import pytest

from numlstm.training.optimizers import (AdamOptimizer, BaseOptimizer, SGDOptimizer, clip_grad_norm,
                                         global_norm)


def _params(rng, dtype=np.float64):
    return [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=5).astype(dtype)]


def test_base_optimizer_needs_get_updates():
    with pytest.raises(NotImplementedError):
        BaseOptimizer(0.1).update_params([np.zeros(2)], [np.ones(2)])


def test_sgd_without_momentum_is_gradient_step():
    rng = np.random.default_rng(0)
    params = _params(rng)
    grads = _params(rng)
    expected = [p - 0.1 * g for p, g in zip(params, grads)]
    opt = SGDOptimizer(params, learning_rate_init=0.1, momentum=0.0, nesterov=False)
    opt.update_params(params, grads)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_closed_form(nesterov):
    rng = np.random.default_rng(1)
    params = _params(rng)
    start = [p.copy() for p in params]
    grads_seq = [_params(rng) for _ in range(3)]
    lr, mu = 0.05, 0.9
    opt = SGDOptimizer(params, lr, momentum=mu, nesterov=nesterov)
    velocity = [np.zeros_like(p) for p in params]
    expected = start
    for grads in grads_seq:
        opt.update_params(params, grads)
        velocity = [mu * v - lr * g for v, g in zip(velocity, grads)]
        if nesterov:
            expected = [e + mu * v - lr * g for e, v, g in zip(expected, velocity, grads)]
        else:
            expected = [e + v for e, v in zip(expected, velocity)]
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-12)


def test_adam_first_step_has_learning_rate_size():
    # With bias correction the first update is -lr * sign(g) (up to epsilon).
    rng = np.random.default_rng(2)
    params = _params(rng)
    start = [p.copy() for p in params]
    grads = _params(rng)
    opt = AdamOptimizer(params, learning_rate_init=0.01)
    opt.update_params(params, grads)
    for p, s, g in zip(params, start, grads):
        np.testing.assert_allclose(p - s, -0.01 * np.sign(g), rtol=1e-5)
    assert opt.t == 1


def test_adam_matches_reference_over_steps():
    rng = np.random.default_rng(3)
    params = _params(rng)
    ref = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    opt = AdamOptimizer(params, 0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    for t in range(1, 6):
        grads = _params(rng)
        opt.update_params(params, grads)
        for i, g in enumerate(grads):
            m[i] = 0.8 * m[i] + 0.2 * g
            v[i] = 0.99 * v[i] + 0.01 * g * g
            # Kingma & Ba's "efficient version" (Sec. 2): bias correction in the step.
            step = 0.003 * np.sqrt(1 - 0.99**t) / (1 - 0.8**t)
            ref[i] = ref[i] - step * m[i] / (np.sqrt(v[i]) + 1e-7)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p, r, rtol=1e-10)


def test_adam_minimises_a_quadratic():
    x = [np.array([3.0, -2.0])]
    opt = AdamOptimizer(x, learning_rate_init=0.1)
    for _ in range(500):
        opt.update_params(x, [2 * x[0]])
    assert np.abs(x[0]).max() < 1e-2


def test_updates_keep_dtype_and_identity():
    rng = np.random.default_rng(4)
    params = _params(rng, np.float32)
    ids = [id(p) for p in params]
    for opt in (SGDOptimizer(params, 0.1), AdamOptimizer(params, 0.1)):
        opt.update_params(params, _params(rng, np.float32))
    assert [id(p) for p in params] == ids
    assert all(p.dtype == np.float32 for p in params)


def test_global_norm():
    assert global_norm([np.array([3.0]), np.array([[4.0]])]) == pytest.approx(5.0)
    assert np.isnan(global_norm([np.array([np.nan, 1.0])]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1.0, 7.3])
def test_clip_grad_norm_is_exact(dtype, max_norm):
    rng = np.random.default_rng(5)
    for trial in range(20):
        grads = [(rng.normal(size=s) * 10.0 ** rng.uniform(-2, 3)).astype(dtype)
                 for s in [(17, 3), (101,), (4, 4)]]
        before = global_norm(grads)
        direction = np.concatenate([g.ravel() for g in grads]).astype(np.float64) / before
        returned = clip_grad_norm(grads, max_norm)
        assert returned == pytest.approx(before)
        after = global_norm(grads)
        assert after <= max_norm
        if before > max_norm:
            assert after == pytest.approx(max_norm, rel=1e-5)
            new_dir = np.concatenate([g.ravel() for g in grads]).astype(np.float64) / after
            np.testing.assert_allclose(new_dir, direction, atol=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = [np.array([0.3, 0.4])]
    assert clip_grad_norm(grads, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(grads[0], [0.3, 0.4])


def test_clip_grad_norm_zero_and_nonfinite():
    grads = [np.array([3.0, 4.0])]
    clip_grad_norm(grads, 0.0)
    np.testing.assert_array_equal(grads[0], [0.0, 0.0])
    bad = [np.array([np.inf, 1.0])]
    assert not np.isfinite(clip_grad_norm(bad, 1.0))
    assert bad[0][1] == 1.0  # untouched: the caller decides what to do
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(grads, -1.0)
