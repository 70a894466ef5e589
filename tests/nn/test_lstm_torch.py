"""numlstm.LSTM against torch.nn.LSTM(batch_first=True) with copied weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is only used to cross-check numlstm.LSTM")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from numlstm import LSTM  # noqa: E402

torch.set_num_threads(1)

# (batch, time, input, hidden, num_layers, bidirectional, lengths or None, with_state)
CASES = [
    (1, 1, 3, 2, 1, False, None, False),
    (3, 5, 4, 3, 1, False, [5, 2, 1], True),
    (2, 4, 3, 4, 2, True, [3, 4], True),
    (4, 3, 2, 3, 2, True, None, False),
    (3, 6, 2, 5, 3, False, [1, 6, 4], False),
    (10, 4, 3, 3, 2, True, [4, 1, 3, 2, 4, 4, 1, 2, 3, 4], True),  # several batch chunks
]


def case_id(c):
    return "B{}T{}I{}H{}L{}{}{}{}".format(c[0], c[1], c[2], c[3], c[4], "bi" if c[5] else "",
                                          "rag" if c[6] is not None else "", "st" if c[7] else "")


def torch_run(module, x, h0, c0, lengths, d_out, d_h_n, d_c_n, dtype):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    hx = None
    if h0 is not None:
        ht = torch.tensor(h0, dtype=dtype, requires_grad=True)
        ct = torch.tensor(c0, dtype=dtype, requires_grad=True)
        hx = (ht, ct)
    T = x.shape[1]
    if lengths is not None:
        packed = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=False)
        out_p, (hn, cn) = module(packed, hx)
        out, _ = pad_packed_sequence(out_p, batch_first=True, total_length=T)
    else:
        out, (hn, cn) = module(xt, hx)
    loss = ((out * torch.tensor(d_out, dtype=dtype)).sum()
            + (hn * torch.tensor(d_h_n, dtype=dtype)).sum()
            + (cn * torch.tensor(d_c_n, dtype=dtype)).sum())
    module.zero_grad()
    loss.backward()
    grads = {k: v.grad.numpy().copy() for k, v in module.named_parameters()}
    if h0 is not None:
        grads["h0"] = ht.grad.numpy().copy()
        grads["c0"] = ct.grad.numpy().copy()
    return (out.detach().numpy(), hn.detach().numpy(), cn.detach().numpy(), grads,
            xt.grad.numpy())


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case, dtype, tol):
    B, T, I, H, L, bidir, lengths, with_state = case
    D = 2 if bidir else 1
    rng = np.random.default_rng(B + 10 * T + 100 * H)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32

    module = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir, batch_first=True,
                           dtype=tdtype)
    layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=dtype, random_state=0)
    # keys, order and shapes identical to torch's
    t_sd = module.state_dict()
    sd = layer.state_dict()
    assert list(sd) == list(t_sd)
    for k in t_sd:
        assert sd[k].shape == tuple(t_sd[k].shape), k
    # numlstm -> torch
    module.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    # and torch -> numlstm round trip is exact
    layer.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])

    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0 = c0 = None
    if with_state:
        h0 = (0.5 * rng.standard_normal((L * D, B, H))).astype(dtype)
        c0 = (0.5 * rng.standard_normal((L * D, B, H))).astype(dtype)
    lengths = None if lengths is None else np.array(lengths)
    d_out = rng.standard_normal((B, T, D * H)).astype(dtype)
    d_h_n = rng.standard_normal((L * D, B, H)).astype(dtype)
    d_c_n = rng.standard_normal((L * D, B, H)).astype(dtype)

    out, (h_n, c_n) = layer.forward(x, h0=h0, c0=c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n=d_h_n, d_c_n=d_c_n)
    t_out, t_h, t_c, t_grads, t_dx = torch_run(module, x, h0, c0, lengths, d_out, d_h_n,
                                               d_c_n, tdtype)

    def close(a, b, name):
        assert np.asarray(a).dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)

    close(out, t_out, "out")
    close(h_n, t_h, "h_n")
    close(c_n, t_c, "c_n")
    close(dx, t_dx, "dx")
    assert set(grads) == set(t_grads)
    for k in t_grads:
        close(grads[k], t_grads[k], k)
