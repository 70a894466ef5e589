"""numlstm.GRU and numlstm.RNN: against plain-NumPy references, finite differences, PyTorch,
across float types and thread counts; state dict, pickling, errors."""

import pickle

import numba
import numpy as np
import pytest

from helpers import (assert_gradients_close, check_gradient_by_finite_differences,
                     random_problem, sample_indices)
from lstm_reference import cell_backward, cell_forward
from numlstm import GRU, RNN

CELLS = ["gru", "rnn_tanh", "rnn_relu"]


def make_layer(cell, I, H, L=1, bidirectional=False, dtype=np.float64, **kw):
    if cell == "gru":
        return GRU(I, H, num_layers=L, bidirectional=bidirectional, dtype=dtype, **kw)
    return RNN(I, H, num_layers=L, nonlinearity=cell[4:], bidirectional=bidirectional,
               dtype=dtype, **kw)


def problem(cell, B, T, I, H, L, bidirectional, ragged, seed=0, scale=0.7):
    rng = np.random.default_rng(seed)
    layer = make_layer(cell, I, H, L, bidirectional, random_state=seed)
    # Larger-than-default weights so that the gates leave their linear regime.
    drawn = random_problem(layer, B, T, rng, weight_scale=scale,
                           lengths="random" if ragged else None)
    (h0,), (d_h_n,) = drawn.initial_states, drawn.d_final_states
    return layer, drawn.x, h0, drawn.lengths, drawn.d_out, d_h_n


# (batch, time, input, hidden, layers, bidirectional, ragged)
REF_CASES = [
    (1, 1, 2, 3, 1, False, False),
    (3, 5, 3, 4, 2, True, True),
    (9, 4, 2, 3, 2, False, True),   # two batch slices on two threads
]


@pytest.mark.parametrize("case", REF_CASES, ids=lambda c: "B{}T{}I{}H{}L{}{}{}".format(
    *c[:5], "bi" if c[5] else "", "rag" if c[6] else ""))
@pytest.mark.parametrize("cell", CELLS)
def test_matches_reference(cell, case):
    layer, x, h0, lengths, d_out, d_h_n = problem(cell, *case)
    out, h_n = layer.forward(x, h0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n)
    params = layer.state_dict()
    ref_out, ref_h, cache = cell_forward(cell, params, x, h0, lengths)
    ref_grads, ref_dx = cell_backward(cache, d_out, d_h_n)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_n, ref_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-11)
    assert_gradients_close(grads, ref_grads, rtol=1e-10, atol=1e-11)
    # Inference path: same outputs.
    out2, h2 = layer.forward(x, h0, lengths=lengths, requires_grad=False)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(h2, h_n)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_finite_differences(cell):
    B, T, I, H, L = 3, 4, 2, 3, 2
    layer, x, h0, lengths, d_out, d_h_n = problem(cell, B, T, I, H, L, True, True, seed=3)
    if cell == "rnn_relu":
        # Keep pre-activations away from the kink at 0, where differences are not derivatives.
        x = x * 0.5
    rng = np.random.default_rng(1)

    def loss():
        out, h_n = layer.forward(x, h0, lengths=lengths, requires_grad=False)
        return float(np.sum(d_out * out) + np.sum(d_h_n * h_n))

    layer.forward(x, h0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n)
    grads = {k: np.array(v) for k, v in grads.items()}
    for name, p in layer.parameters().items():
        check_gradient_by_finite_differences(loss, p, grads[name], name,
                                             sample_indices(rng, p, 4))
    for name, arr, g in (("x", x, dx), ("h0", h0, grads["h0"])):
        check_gradient_by_finite_differences(loss, arr, g, name, sample_indices(rng, arr, 6))
    for b, n in enumerate(lengths):
        assert np.all(dx[b, n:] == 0.0)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_matches_float64(cell):
    layer, x, h0, lengths, d_out, d_h_n = problem(cell, 6, 5, 3, 4, 2, True, True, seed=5,
                                                  scale=0.4)
    single = make_layer(cell, 3, 4, 2, True, dtype=np.float32)
    single.load_state_dict(layer.state_dict())
    results = []
    for lay in (layer, single):
        out, h_n = lay.forward(x, h0, lengths=lengths)
        grads, dx = lay.backward(d_out, d_h_n)
        results.append((out, h_n, dx, lay.flat_gradient.copy()))
    for a, b in zip(*results):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())


@pytest.mark.parametrize("cell", CELLS)
def test_parallel_slices_match_one_thread(cell):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    layer, x, h0, lengths, d_out, d_h_n = problem(cell, 12, 5, 3, 4, 1, True, True, seed=7)
    results = []
    saved = numba.get_num_threads()
    for n_threads in (1, 2):
        numba.set_num_threads(n_threads)
        try:
            out, h_n = layer.forward(x, h0, lengths=lengths)
            grads, dx = layer.backward(d_out, d_h_n)
            inf_out, _ = layer.forward(x, h0, lengths=lengths, requires_grad=False)
        finally:
            numba.set_num_threads(saved)
        results.append((out, h_n, dx, inf_out, grads["h0"], layer.flat_gradient.copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13)


def test_state_dict_layout_and_initialisation():
    gru = GRU(3, 5, num_layers=2, bidirectional=True, random_state=0)
    sd = gru.state_dict()
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert sd["weight_ih_l0"].shape == (15, 3)
    assert sd["weight_ih_l1_reverse"].shape == (15, 10)
    assert sd["weight_hh_l1"].shape == (15, 5)
    assert gru.flat_parameters.size == sum(v.size for v in sd.values())
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(gru.flat_parameters) <= bound)
    assert gru.cell == "gru" and gru.n_states == 1 and gru.output_size == 10
    rnn = RNN(3, 5, 3, "relu", random_state=0)
    assert rnn.num_layers == 3 and rnn.nonlinearity == "relu" and rnn.cell == "rnn"
    assert rnn.state_dict()["weight_hh_l2"].shape == (5, 5)
    assert rnn.flat_parameters.size == sum(v.size for v in rnn.state_dict().values())
    assert repr(rnn) == "RNN(3, 5, num_layers=3, nonlinearity='relu', dtype=float32, " \
                        "device='cpu')"
    assert repr(gru) == ("GRU(3, 5, num_layers=2, bidirectional=True, dtype=float32, "
                         "device='cpu')")
    # Same seed, same weights; parameters are live views.
    np.testing.assert_array_equal(GRU(3, 5, random_state=1).flat_parameters,
                                  GRU(3, 5, random_state=1).flat_parameters)
    gru.parameters()["bias_hh_l0"][:] = 7.0
    assert np.all(gru.state_dict()["bias_hh_l0"] == 7.0)


@pytest.mark.parametrize("cell", ["gru", "rnn_relu"])
def test_pickle_round_trip(cell):
    layer, x, h0, lengths, d_out, d_h_n = problem(cell, 4, 3, 2, 3, 2, True, True)
    layer.dropout = 0.0
    out, h_n = layer.forward(x, h0, lengths=lengths)
    clone = pickle.loads(pickle.dumps(layer))
    assert type(clone) is type(layer) and repr(clone) == repr(layer)
    out2, h2 = clone.forward(x, h0, lengths=lengths)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(h2, h_n)
    clone.backward(d_out, d_h_n)
    clone.parameters()["weight_ih_l0"][0, 0] += 1.0  # views still share the flat vector
    assert clone.flat_parameters[0] == layer.flat_parameters[0] + 1.0


def test_dropout_between_layers():
    layer = GRU(3, 4, num_layers=2, dropout=0.5, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 3))
    a, _ = layer.forward(x)
    b, _ = layer.forward(x)
    assert not np.allclose(a, b)
    layer.eval()
    c, _ = layer.forward(x)
    d, _ = layer.forward(x)
    np.testing.assert_array_equal(c, d)


def test_errors():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dtype"):
        GRU(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(3, 0)
    layer = GRU(3, 4, num_layers=2, dtype=np.float64)
    x = np.zeros((2, 5, 3))
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="input_size=3"):
        layer.forward(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 4\)"):
        layer.forward(x, np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="lengths"):
        layer.forward(x, lengths=[0, 5])
    layer.forward(x)
    with pytest.raises(ValueError, match="d_out"):
        layer.backward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"d_h_n must have shape"):
        layer.backward(np.zeros((2, 5, 4)), np.zeros((2, 2, 3)))
    with pytest.raises(KeyError, match="GRU"):
        layer.load_state_dict({})
    with pytest.raises(ValueError, match="NaN"):
        layer.load_state_dict({k: np.full(v.shape, np.nan)
                               for k, v in layer.state_dict().items()})
    with pytest.raises(ValueError, match="state"):
        layer.forward_states(x, (None, None))
