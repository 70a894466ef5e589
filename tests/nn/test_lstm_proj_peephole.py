"""LSTM options: projections (``proj_size``, PyTorch semantics) and peephole connections.

Finite differences for every weight, the input and both initial states; PyTorch's
``nn.LSTM(proj_size=...)`` with copied weights; layout, float types, threads, errors.
"""

import pickle

import numba
import numpy as np
import pytest

from helpers import check_gradient_by_finite_differences, random_problem, sample_indices
from numlstm import LSTM

OPTIONS = {"proj": dict(proj_size=2), "peephole": dict(peephole=True),
           "proj+peephole": dict(proj_size=2, peephole=True)}


def problem(options, B, T, I, H, L, bidirectional, ragged, seed=0, scale=0.7,
            dtype=np.float64):
    rng = np.random.default_rng(seed)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidirectional, dtype=dtype,
                 random_state=seed, **options)
    drawn = random_problem(layer, B, T, rng, weight_scale=scale,
                           lengths="random" if ragged else None)
    h0, c0 = drawn.initial_states
    return layer, drawn.x, h0, c0, drawn.lengths, (drawn.d_out,) + drawn.d_final_states


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_gradients_finite_differences(name, bidirectional):
    B, T, I, H, L = 3, 4, 2, 3, 2
    layer, x, h0, c0, lengths, (d_out, d_h_n, d_c_n) = problem(
        OPTIONS[name], B, T, I, H, L, bidirectional, True, seed=11)
    rng = np.random.default_rng(2)

    def loss():
        out, (h_n, c_n) = layer.forward(x, h0, c0, lengths=lengths, requires_grad=False)
        return float(np.sum(d_out * out) + np.sum(d_h_n * h_n) + np.sum(d_c_n * c_n))

    layer.forward(x, h0, c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    grads = {k: np.array(v) for k, v in grads.items()}
    assert set(grads) == set(layer.state_dict()) | {"h0", "c0"}
    for key, p in layer.parameters().items():
        check_gradient_by_finite_differences(loss, p, grads[key], key,
                                             sample_indices(rng, p, 3))
    for key, arr, g in (("x", x, dx), ("h0", h0, grads["h0"]), ("c0", c0, grads["c0"])):
        check_gradient_by_finite_differences(loss, arr, g, key, sample_indices(rng, arr, 5))
    for b, n in enumerate(lengths):
        assert np.all(dx[b, n:] == 0.0)


def test_zero_peepholes_compute_the_plain_lstm():
    layer, x, h0, c0, lengths, grads_in = problem(OPTIONS["peephole"], 4, 5, 3, 4, 2, True,
                                                  True)
    plain = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    sd = layer.state_dict()
    plain.load_state_dict({k: v for k, v in sd.items() if not k.startswith("weight_c")})
    for k in sd:
        if k.startswith("weight_c"):
            layer.parameters()[k][:] = 0.0
    results = []
    for lay in (layer, plain):
        out, (h_n, c_n) = lay.forward(x, h0, c0, lengths=lengths)
        grads, dx = lay.backward(*grads_in)
        results.append((out, h_n, c_n, dx, grads["weight_hh_l1_reverse"], grads["h0"],
                        grads["c0"]))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_state_dict_keys_and_shapes():
    layer = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, peephole=True)
    sd = layer.state_dict()
    assert list(sd)[:9] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_ci_l0", "weight_cf_l0", "weight_co_l0", "weight_hr_l0",
                            "weight_ih_l0_reverse"]
    assert sd["weight_hh_l0"].shape == (20, 2)
    assert sd["weight_hr_l1_reverse"].shape == (2, 5)
    assert sd["weight_ih_l1"].shape == (20, 4)
    assert sd["weight_co_l1_reverse"].shape == (5,)
    assert layer.flat_parameters.size == sum(v.size for v in sd.values())
    assert layer.state_size == 2 and layer.output_size == 4
    assert repr(layer) == ("LSTM(3, 5, num_layers=2, proj_size=2, peephole=True, "
                           "bidirectional=True, dtype=float32, device='cpu')")
    out, (h_n, c_n) = layer.forward(np.zeros((3, 4, 3)))
    assert out.shape == (3, 4, 4) and h_n.shape == (4, 3, 2) and c_n.shape == (4, 3, 5)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_float32_matches_float64(name):
    layer, x, h0, c0, lengths, grads_in = problem(OPTIONS[name], 6, 5, 3, 4, 2, True, True,
                                                  scale=0.4)
    single = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float32, **OPTIONS[name])
    single.load_state_dict(layer.state_dict())
    results = []
    for lay in (layer, single):
        out, (h_n, c_n) = lay.forward(x, h0, c0, lengths=lengths)
        grads, dx = lay.backward(*grads_in)
        results.append((out, h_n, c_n, dx, lay.flat_gradient.copy()))
    for a, b in zip(*results):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


@pytest.mark.parametrize("name", list(OPTIONS))
def test_parallel_slices_match_one_thread(name):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    layer, x, h0, c0, lengths, grads_in = problem(OPTIONS[name], 12, 4, 3, 4, 1, True, True)
    saved = numba.get_num_threads()
    results = []
    for n_threads in (1, 2):
        numba.set_num_threads(n_threads)
        try:
            out, (h_n, c_n) = layer.forward(x, h0, c0, lengths=lengths)
            grads, dx = layer.backward(*grads_in)
            inference, _ = layer.forward(x, h0, c0, lengths=lengths, requires_grad=False)
        finally:
            numba.set_num_threads(saved)
        results.append((out, h_n, c_n, dx, inference, layer.flat_gradient.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(b, a)


def test_pickle_and_errors():
    layer, x, h0, c0, lengths, grads_in = problem(OPTIONS["proj+peephole"], 3, 4, 2, 3, 1,
                                                  False, True)
    out, _ = layer.forward(x, h0, c0, lengths=lengths)
    clone = pickle.loads(pickle.dumps(layer))
    assert clone.proj_size == 2 and clone.peephole
    np.testing.assert_array_equal(clone.forward(x, h0, c0, lengths=lengths)[0], out)
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 4, proj_size=-1)
    with pytest.raises(TypeError, match="proj_size"):
        LSTM(3, 4, proj_size=True)
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 3, 2\).*proj_size"):
        layer.forward(x, np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match=r"c0 must have shape \(1, 3, 3\)"):
        layer.forward(x, h0, np.zeros((1, 3, 2)))


@pytest.mark.parametrize("name", list(OPTIONS))
def test_forward_matches_reference(name):
    from lstm_reference import lstm_options_forward

    layer, x, h0, c0, lengths, _ = problem(OPTIONS[name], 5, 4, 3, 4, 2, True, True, seed=4)
    out, (h_n, c_n) = layer.forward(x, h0, c0, lengths=lengths)
    ref_out, ref_h, ref_c = lstm_options_forward(layer.state_dict(), x, h0, c0, lengths)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n, ref_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c_n, ref_c, rtol=1e-12, atol=1e-12)
