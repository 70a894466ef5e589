"""numlstm.LSTM research-API contract: attributes, state_dict, init, flat views,
requires_grad=False, input validation."""

import numpy as np
import pytest

import lstm_reference as ref
from numlstm import LSTM


def expected_shapes(I, H, L, bidir):
    D = 2 if bidir else 1
    shapes = {}
    for name in ref.param_names(L, bidir):
        k = int(name.split("_l")[1].split("_")[0])
        in_k = I if k == 0 else D * H
        if name.startswith("weight_ih"):
            shapes[name] = (4 * H, in_k)
        elif name.startswith("weight_hh"):
            shapes[name] = (4 * H, H)
        else:
            shapes[name] = (4 * H,)
    return shapes


def offset_in(view, base):
    """Element offset of ``view`` inside 1-D ``base`` (asserts it is a view of it)."""
    assert np.shares_memory(view, base)
    start = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    assert start % base.itemsize == 0
    return start // base.itemsize


def test_attributes():
    layer = LSTM(3, 5, num_layers=2, bidirectional=True, dropout=0.25, random_state=0)
    assert layer.input_size == 3
    assert layer.hidden_size == 5
    assert layer.num_layers == 2
    assert layer.bidirectional is True
    assert layer.num_directions == 2
    assert layer.dropout == 0.25
    assert layer.dtype == np.dtype(np.float32)  # default dtype
    assert isinstance(layer.dtype, np.dtype)
    assert layer.training is True
    one = LSTM(3, 5, dtype=np.float64)
    assert one.num_directions == 1 and one.bidirectional is False and one.num_layers == 1
    assert one.dtype == np.dtype(np.float64)
    layer.eval()
    assert layer.training is False
    layer.train()
    assert layer.training is True


@pytest.mark.parametrize("I,H,L,bidir", [(3, 4, 1, False), (2, 3, 3, True), (5, 2, 2, False)])
def test_state_dict_keys_shapes_and_copies(I, H, L, bidir):
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=np.float64, random_state=1)
    sd = layer.state_dict()
    exp = expected_shapes(I, H, L, bidir)
    assert list(sd) == list(exp)  # same names, same order as torch
    for k, shape in exp.items():
        assert isinstance(sd[k], np.ndarray)
        assert sd[k].shape == shape, k
        assert sd[k].dtype == np.float64
        assert not np.shares_memory(sd[k], layer.flat_parameters), k
    assert layer.flat_parameters.ndim == 1
    assert layer.flat_parameters.size == sum(int(np.prod(s)) for s in exp.values())
    # state_dict returns copies
    before = layer.flat_parameters.copy()
    for v in sd.values():
        v[...] = 123.0
    np.testing.assert_array_equal(layer.flat_parameters, before)


def test_state_dict_round_trip():
    a = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, random_state=1)
    b = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, random_state=2)
    assert not np.array_equal(a.flat_parameters, b.flat_parameters)
    flat_b = b.flat_parameters  # e.g. held by an optimizer
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.flat_parameters, a.flat_parameters)
    np.testing.assert_array_equal(flat_b, a.flat_parameters)  # loaded in place
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
        np.testing.assert_array_equal(b.parameters()[k], v)
    x = np.random.default_rng(0).standard_normal((2, 3, 3))
    oa, (ha, ca) = a.forward(x)
    oa, ha = oa.copy(), ha.copy()
    ob, (hb, cb) = b.forward(x)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(ha, hb)
    # load from lists (anything np.asarray takes) and from another dtype
    c = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float32, random_state=3)
    c.load_state_dict({k: v.tolist() for k, v in a.state_dict().items()})
    np.testing.assert_allclose(c.flat_parameters, a.flat_parameters, rtol=1e-7)
    assert c.flat_parameters.dtype == np.float32


def test_load_state_dict_checks_keys_and_shapes():
    layer = LSTM(3, 4, num_layers=2, dtype=np.float64, random_state=0)
    good = layer.state_dict()
    before = layer.flat_parameters.copy()

    missing = dict(good)
    del missing["bias_hh_l1"]
    with pytest.raises((ValueError, KeyError)):
        layer.load_state_dict(missing)

    extra = dict(good)
    extra["weight_ih_l2"] = np.zeros((16, 4))
    with pytest.raises((ValueError, KeyError)):
        layer.load_state_dict(extra)

    bad_shape = dict(good)
    bad_shape["weight_hh_l0"] = np.zeros((16, 5))
    with pytest.raises(ValueError):
        layer.load_state_dict(bad_shape)

    transposed = dict(good)
    transposed["weight_ih_l0"] = good["weight_ih_l0"].T.copy()
    with pytest.raises(ValueError):
        layer.load_state_dict(transposed)

    np.testing.assert_array_equal(layer.flat_parameters, before)


def test_load_state_dict_refuses_values_beyond_the_layer_dtype():
    """1e39 is finite in float64 but infinite in float32: refused, naming the key, without
    NumPy's overflow warning and without changing any weight."""
    import warnings

    layer = LSTM(2, 3, random_state=0)  # float32
    before = layer.flat_parameters.copy()
    state = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    state["weight_hh_l0"][0, 0] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l0'\].*float32"):
            layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.flat_parameters, before)
    # A float64 layer holds it.
    wide = LSTM(2, 3, dtype=np.float64, random_state=0)
    wide.load_state_dict(state)
    assert wide.state_dict()["weight_hh_l0"][0, 0] == 1e39


@pytest.mark.parametrize("bidir", [False, True])
def test_parameters_are_live_views_and_gradient_layout(bidir):
    layer = LSTM(2, 3, num_layers=2, bidirectional=bidir, dtype=np.float64, random_state=0)
    flat = layer.flat_parameters
    params = layer.parameters()
    assert list(params) == list(layer.state_dict())
    offsets = {}
    for k, v in params.items():
        offsets[k] = offset_in(v, flat)
        np.testing.assert_array_equal(v, layer.state_dict()[k])
    # the views tile flat_parameters exactly, without overlap
    spans = sorted((offsets[k], offsets[k] + params[k].size) for k in params)
    assert spans[0][0] == 0 and spans[-1][1] == flat.size
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # writing into the flat vector changes the parameters (and the forward pass)
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    out0 = layer.forward(x)[0].copy()
    w00 = float(params["weight_hh_l0"][0, 0])
    flat[offsets["weight_hh_l0"]] += 0.5
    assert params["weight_hh_l0"][0, 0] == w00 + 0.5
    assert layer.state_dict()["weight_hh_l0"][0, 0] == w00 + 0.5
    out1 = layer.forward(x)[0].copy()
    assert not np.allclose(out0, out1)
    np.testing.assert_allclose(out1, ref.lstm_forward(layer.state_dict(), x)[0], rtol=1e-10,
                               atol=1e-12)
    # writing into a parameter view changes flat_parameters
    params["bias_ih_l1"][:] = 0.25
    assert np.all(layer.state_dict()["bias_ih_l1"] == 0.25)
    assert np.all(flat[offsets["bias_ih_l1"]:offsets["bias_ih_l1"] + params["bias_ih_l1"].size]
                  == 0.25)

    # gradients are views into flat_gradient with the same layout
    out, _ = layer.forward(x)
    d_out = np.random.default_rng(2).standard_normal(out.shape)
    grads, dx = layer.backward(d_out)
    fg = layer.flat_gradient
    assert fg.ndim == 1 and fg.shape == flat.shape and fg.dtype == flat.dtype
    r_grads, _ = ref.lstm_backward(layer.state_dict(),
                                   ref.lstm_forward(layer.state_dict(), x)[3], d_out)
    for k in params:
        assert grads[k].shape == params[k].shape
        assert grads[k].strides == params[k].strides, k
        assert offset_in(grads[k], fg) == offsets[k], k
        np.testing.assert_allclose(grads[k], r_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)
    # writing into flat_gradient is seen through the gradient views
    fg[:] = 0.0
    assert all(np.all(g == 0.0) for k, g in grads.items() if k in params)


@pytest.mark.parametrize("H", [4, 16])
def test_init_ranges_and_forget_bias(H):
    bound = 1.0 / np.sqrt(H)
    layer = LSTM(5, H, num_layers=2, bidirectional=True, dtype=np.float64, random_state=0)
    sd = layer.state_dict()
    allw = []
    for k, v in sd.items():
        if k.startswith("bias_ih"):
            np.testing.assert_array_equal(v[H:2 * H], 1.0, err_msg=k)
            rest = np.concatenate([v[:H], v[2 * H:]])
        else:
            rest = v.ravel()
        assert np.all(np.abs(rest) <= bound), k
        allw.append(rest)
    allw = np.concatenate(allw)
    # looks uniform on [-bound, bound]
    assert allw.min() < -0.9 * bound and allw.max() > 0.9 * bound
    assert abs(allw.mean()) < 0.1 * bound
    assert abs(allw.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert np.unique(allw).size > 0.9 * allw.size
    # forget-gate bias of bias_hh is *not* set
    assert not np.all(sd["bias_hh_l0"][H:2 * H] == 1.0)

    none = LSTM(5, H, num_layers=2, bidirectional=True, dtype=np.float64, forget_bias=None,
                random_state=0)
    for k, v in none.state_dict().items():
        assert np.all(np.abs(v) <= bound), k
        if k.startswith("bias_ih"):
            assert np.unique(v[H:2 * H]).size == H

    other = LSTM(5, H, dtype=np.float64, forget_bias=2.5, random_state=0)
    np.testing.assert_array_equal(other.state_dict()["bias_ih_l0"][H:2 * H], 2.5)


def test_random_state_reproducible():
    a = LSTM(3, 4, num_layers=2, dtype=np.float64, random_state=7)
    b = LSTM(3, 4, num_layers=2, dtype=np.float64, random_state=7)
    c = LSTM(3, 4, num_layers=2, dtype=np.float64, random_state=8)
    np.testing.assert_array_equal(a.flat_parameters, b.flat_parameters)
    assert not np.array_equal(a.flat_parameters, c.flat_parameters)


@pytest.mark.parametrize("bidir,L", [(False, 1), (True, 2)])
def test_requires_grad_false(bidir, L):
    rng = np.random.default_rng(3)
    layer = LSTM(3, 4, num_layers=L, bidirectional=bidir, dtype=np.float64, random_state=0)
    D = 2 if bidir else 1
    x = rng.standard_normal((3, 5, 3))
    h0 = rng.standard_normal((L * D, 3, 4))
    c0 = rng.standard_normal((L * D, 3, 4))
    lengths = np.array([5, 2, 4])
    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    out, h_n, c_n = out.copy(), h_n.copy(), c_n.copy()
    out2, (h2, c2) = layer.forward(x, h0=h0, c0=c0, lengths=lengths, requires_grad=False)
    np.testing.assert_allclose(out2, out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2, h_n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c2, c_n, rtol=1e-12, atol=1e-14)
    assert np.all(out2[1, 2:] == 0.0)
    with pytest.raises((RuntimeError, ValueError)):
        layer.backward(np.ones_like(out2))
    # a new forward with gradients makes backward work again
    layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(np.ones_like(out2))
    assert dx.shape == x.shape


@pytest.mark.parametrize("cell,options", [
    ("lstm", {}),
    ("lstm", {"proj_size": 2, "bidirectional": True}),
    ("lstm", {"peephole": True, "num_layers": 2, "input_dropout": 0.3}),
    ("gru", {"bidirectional": True, "num_layers": 2}),
    ("rnn", {"nonlinearity": "relu"}),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_without_the_input_gradient(cell, options, dtype):
    """``input_gradient=False`` returns no ``dx`` and the same weight and state gradients,
    bit for bit (the bottom layer's input product is skipped, nothing else)."""
    from numlstm import GRU, RNN

    Layer = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5, 7)).astype(dtype)
    lengths = np.array([5, 1, 3, 5, 2, 4])
    results = []
    for input_gradient in (True, False):
        layer = Layer(7, 4, dtype=dtype, random_state=0, **options)
        layer.train()
        h0 = np.random.default_rng(2).standard_normal(
            (layer.num_layers * layer.num_directions, 6, layer.state_size)).astype(dtype)
        out, _ = layer.forward(x, h0=h0, lengths=lengths)
        d_out = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        grads, dx = layer.backward(d_out, input_gradient=input_gradient)
        results.append((dx, {k: v.copy() for k, v in grads.items()}))
    (dx, expected), (no_dx, actual) = results
    assert dx.shape == x.shape and np.any(dx != 0)
    assert no_dx is None
    assert expected.keys() == actual.keys() and "h0" in actual
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.mark.parametrize("lengths", [None, np.array([5, 5]), np.array([5, 3])])
def test_refilling_the_callers_arrays_before_backward_changes_no_gradient(lengths):
    """backward reads what forward saw, not the caller's arrays as they are by then (a
    buffer refilled with the next batch, say)."""
    layer = LSTM(3, 4, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    results = []
    for refill in (False, True):
        given_x = x.copy()
        given_lengths = None if lengths is None else lengths.copy()
        out, _ = layer.forward(given_x, lengths=given_lengths)
        if refill:
            given_x[...] = 7.0
            if given_lengths is not None:
                given_lengths[...] = 1
        grads, dx = layer.backward(np.ones_like(out))
        results.append(({k: v.copy() for k, v in grads.items()}, dx))
    (expected, dx), (actual, dx_refilled) = results
    np.testing.assert_array_equal(dx_refilled, dx)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_backward_before_forward_raises():
    layer = LSTM(3, 4, dtype=np.float64, random_state=0)
    with pytest.raises((RuntimeError, ValueError)):
        layer.backward(np.ones((2, 3, 4)))


class TestBadInput:
    layer = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, random_state=0)

    @pytest.mark.parametrize("shape", [(5, 3), (2, 5, 3, 1), (3,)])
    def test_x_wrong_rank(self, shape):
        with pytest.raises(ValueError, match=r"\bx\b"):
            self.layer.forward(np.zeros(shape))

    @pytest.mark.parametrize("features", [2, 4, 6])
    def test_x_wrong_features(self, features):
        with pytest.raises(ValueError, match=r"\bx\b"):
            self.layer.forward(np.zeros((2, 5, features)))

    @pytest.mark.parametrize("lengths", [[0, 5], [6, 5], [-1, 3], [5, 5, 5], [5], [[5, 5]],
                                         [[5], [5]]])
    def test_lengths_bad(self, lengths):
        with pytest.raises(ValueError, match="lengths"):
            self.layer.forward(np.zeros((2, 5, 3)), lengths=np.array(lengths))

    @pytest.mark.parametrize("name", ["h0", "c0"])
    @pytest.mark.parametrize("shape", [(2, 2, 4), (4, 3, 4), (4, 2, 5), (2, 4)])
    def test_state_bad_shape(self, name, shape):
        with pytest.raises(ValueError, match=name):
            self.layer.forward(np.zeros((2, 5, 3)), **{name: np.zeros(shape)})

    def test_good_input_still_works(self):
        out, (h, c) = self.layer.forward(np.zeros((2, 5, 3)), lengths=np.array([1, 5]))
        assert out.shape == (2, 5, 8) and h.shape == (4, 2, 4) and c.shape == (4, 2, 4)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_default_states_and_lengths_shared_between_calls_stay_untouched(cell):
    # Zero initial states, full lengths and size-0 placeholders are built once and shared
    # by every call (numlstm.nn.recurrent._constant, numlstm.nn.cpu_backend._empty): a kernel or a
    # gradient step writing into one would corrupt every later call.
    import numlstm
    from numlstm.nn import cpu_backend as _backend
    from numlstm.nn import recurrent as layers

    layer_class = getattr(numlstm, cell.upper())
    layer = layer_class(3, 5, num_layers=2, bidirectional=True, dtype=np.float64,
                        random_state=0)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    for _ in range(2):
        out, finals = layer.forward_states(x)
        grads, dx = layer.backward_states(np.ones_like(out), (None,) * layer.n_states)
        layer.forward_states(x, requires_grad=False)
    assert layers._constants and _backend._placeholders
    for (kind, _, _), array in layers._constants.items():
        assert np.all(array == (0 if kind[0] == "zeros" else kind[1])), kind
    assert all(array.size == 0 for array in _backend._placeholders.values())
    # What a call returns is its own: never one of the shared arrays.
    shared = {id(a) for a in layers._constants.values()}
    assert not {id(a) for a in (out, dx) + tuple(finals)} & shared


def test_each_backward_returns_a_new_dict_of_live_gradient_views():
    layer = LSTM(3, 4, dtype=np.float64, random_state=0)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    out, _ = layer.forward(x)
    first, _ = layer.backward(np.ones_like(out))
    first["extra"] = None
    out, _ = layer.forward(2 * x)
    second, _ = layer.backward(np.ones_like(out))
    assert "extra" not in second and second is not first
    assert np.shares_memory(second["weight_ih_l0"], layer.flat_gradient)
    np.testing.assert_array_equal(first["weight_ih_l0"], second["weight_ih_l0"])


def test_large_default_states_are_not_kept_after_the_call():
    from numlstm.nn import recurrent as layers

    layer = LSTM(2, 64, dtype=np.float32, random_state=0)
    x = np.zeros((5000, 1, 2), np.float32)  # zero states of 5000 x 64 floats: 1.3 MB each
    layer.forward(x, requires_grad=False)
    assert not any(shape == (1, 5000, 64) for (_, shape, _) in layers._constants)
