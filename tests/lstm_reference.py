"""Plain-NumPy float64 reference LSTM, written directly from the equations.

This module deliberately shares no code with ``numlstm``.  It is slow and
simple on purpose: every sequence of the batch is run on its own, one time
step at a time, and the backward pass is hand-written backpropagation
through time.  It is used by the test-suite as ground truth.

Conventions follow ``torch.nn.LSTM(batch_first=True)``:

* weights come in a dict with torch's key names
  (``weight_ih_l{k}[_reverse]`` (4H, I_k), ``weight_hh_l{k}[_reverse]`` (4H, H),
  ``bias_ih_l{k}[_reverse]`` (4H,), ``bias_hh_l{k}[_reverse]`` (4H,)), gate order
  i, f, g, o;
* ``x`` is (batch, time, input); ``h0``/``c0``/``h_n``/``c_n`` are
  (num_layers * D, batch, H) with index ``layer * D + direction``;
* ragged ``lengths`` have packed-sequence semantics: sequence ``b`` only has
  steps ``0 .. lengths[b]-1``; padded steps output zero, never touch the state
  and get no gradient; the forward direction's final state is the state after
  step ``lengths[b]-1``, the reverse direction starts at step ``lengths[b]-1``
  and its final state is the state after step 0.

Equations, per layer and direction::

    z   = W_ih x_t + b_ih + W_hh h_prev + b_hh      (4H, split into i, f, g, o)
    i, f, o = sigmoid(.), g = tanh(.)
    c_t = f * c_prev + i * g
    h_t = o * tanh(c_t)

Layer ``k > 0`` reads ``concat(forward out, reverse out)`` of layer ``k-1``.
No dropout.

Public API::

    out, h_n, c_n, cache = lstm_forward(params, x, h0=None, c0=None, lengths=None)
    grads, dx = lstm_backward(params, cache, d_out, d_h_n=None, d_c_n=None)

``grads`` has the same keys as ``params`` plus ``"h0"`` / ``"c0"`` when the
forward pass was given them.  ``num_layers``, ``bidirectional`` and the sizes
are read off the key names and shapes of ``params``.
"""

import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def param_names(num_layers, bidirectional):
    """Torch's state_dict key names, in torch's order."""
    names = []
    for k in range(num_layers):
        for suffix in (["", "_reverse"] if bidirectional else [""]):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                names.append(f"{kind}_l{k}{suffix}")
    return names


def describe(params):
    """Return (num_layers, num_directions, input_size, hidden_size) of ``params``."""
    num_layers = 0
    while f"weight_ih_l{num_layers}" in params:
        num_layers += 1
    if num_layers == 0:
        raise ValueError("params has no weight_ih_l0")
    D = 2 if "weight_ih_l0_reverse" in params else 1
    hidden_size = np.asarray(params["weight_hh_l0"]).shape[1]
    input_size = np.asarray(params["weight_ih_l0"]).shape[1]
    return num_layers, D, input_size, hidden_size


def init_params(input_size, hidden_size, num_layers=1, bidirectional=False, rng=None,
                scale=None):
    """Random float64 weights with torch's key names (uniform +-scale, default 1/sqrt(H))."""
    rng = np.random.default_rng(rng)
    if scale is None:
        scale = 1.0 / np.sqrt(hidden_size)
    D = 2 if bidirectional else 1
    params = {}
    for name in param_names(num_layers, bidirectional):
        k = int(name.split("_l")[1].split("_")[0])
        in_k = input_size if k == 0 else D * hidden_size
        if name.startswith("weight_ih"):
            shape = (4 * hidden_size, in_k)
        elif name.startswith("weight_hh"):
            shape = (4 * hidden_size, hidden_size)
        else:
            shape = (4 * hidden_size,)
        params[name] = rng.uniform(-scale, scale, size=shape)
    return params


def _suffix(d):
    return "_reverse" if d == 1 else ""


def _run_sequence(W_ih, W_hh, b_ih, b_hh, xs, h, c):
    """Run one LSTM over the rows of ``xs`` (L, I) in the given order.

    Returns the hidden states (L, H) and a per-step record for backprop.
    """
    H = W_hh.shape[1]
    hs = np.zeros((xs.shape[0], H))
    steps = []
    for s in range(xs.shape[0]):
        z = W_ih @ xs[s] + b_ih + W_hh @ h + b_hh
        i = _sigmoid(z[0:H])
        f = _sigmoid(z[H:2 * H])
        g = np.tanh(z[2 * H:3 * H])
        o = _sigmoid(z[3 * H:4 * H])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append(dict(x=xs[s], h_prev=h, c_prev=c, i=i, f=f, g=g, o=o, c=c_new))
        h, c = h_new, c_new
        hs[s] = h
    return hs, h, c, steps


def _backprop_sequence(W_ih, W_hh, steps, d_hs, d_h_last, d_c_last, grads):
    """Backprop through one sequence run by ``_run_sequence``.

    ``d_hs`` (L, H): gradient w.r.t. each step's output; ``d_h_last``/``d_c_last``:
    gradient w.r.t. the final state.  Accumulates weight gradients into
    ``grads`` (dict with keys W_ih, W_hh, b) and returns (d_xs, d_h0, d_c0).
    """
    d_xs = np.zeros((len(steps), W_ih.shape[1]))
    dh_next = d_h_last.copy()
    dc_next = d_c_last.copy()
    for s in range(len(steps) - 1, -1, -1):
        st = steps[s]
        i, f, g, o, c = st["i"], st["f"], st["g"], st["o"], st["c"]
        dh = d_hs[s] + dh_next
        tc = np.tanh(c)
        d_o = dh * tc
        dc = dc_next + dh * o * (1.0 - tc ** 2)
        d_i = dc * g
        d_g = dc * i
        d_f = dc * st["c_prev"]
        dz = np.concatenate([
            d_i * i * (1.0 - i),
            d_f * f * (1.0 - f),
            d_g * (1.0 - g ** 2),
            d_o * o * (1.0 - o),
        ])
        grads["W_ih"] += np.outer(dz, st["x"])
        grads["W_hh"] += np.outer(dz, st["h_prev"])
        grads["b"] += dz
        d_xs[s] = W_ih.T @ dz
        dh_next = W_hh.T @ dz
        dc_next = dc * f
    return d_xs, dh_next, dc_next


def _check_lengths(lengths, B, T):
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (B,):
        raise ValueError("lengths must have shape (batch,)")
    if np.any(lengths < 1) or np.any(lengths > T):
        raise ValueError("lengths must lie in [1, time]")
    return lengths.astype(np.int64)


def lstm_forward(params, x, h0=None, c0=None, lengths=None):
    """Forward pass.  Returns (out, h_n, c_n, cache), all float64."""
    L_layers, D, _, H = describe(params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    lengths = _check_lengths(lengths, B, T)
    S = L_layers * D
    h_init = np.zeros((S, B, H)) if h0 is None else np.asarray(h0, dtype=np.float64)
    c_init = np.zeros((S, B, H)) if c0 is None else np.asarray(c0, dtype=np.float64)
    h_n = np.zeros((S, B, H))
    c_n = np.zeros((S, B, H))

    layer_in = x
    records = []  # records[k][d][b] = list of steps
    layer_inputs = []
    for k in range(L_layers):
        layer_inputs.append(layer_in)
        layer_out = np.zeros((B, T, D * H))
        rec_k = []
        for d in range(D):
            sfx = _suffix(d)
            W_ih, W_hh = p[f"weight_ih_l{k}{sfx}"], p[f"weight_hh_l{k}{sfx}"]
            b_ih, b_hh = p[f"bias_ih_l{k}{sfx}"], p[f"bias_hh_l{k}{sfx}"]
            rec_d = []
            for b in range(B):
                n = lengths[b]
                order = np.arange(n) if d == 0 else np.arange(n - 1, -1, -1)
                hs, h, c, steps = _run_sequence(W_ih, W_hh, b_ih, b_hh, layer_in[b, order],
                                                h_init[k * D + d, b], c_init[k * D + d, b])
                layer_out[b, order, d * H:(d + 1) * H] = hs
                h_n[k * D + d, b] = h
                c_n[k * D + d, b] = c
                rec_d.append((order, steps))
            rec_k.append(rec_d)
        records.append(rec_k)
        layer_in = layer_out
    cache = dict(records=records, layer_inputs=layer_inputs, shape=(B, T, x.shape[2]),
                 has_h0=h0 is not None, has_c0=c0 is not None, p=p, H=H, D=D,
                 num_layers=L_layers)
    return layer_in, h_n, c_n, cache


def lstm_backward(params, cache, d_out, d_h_n=None, d_c_n=None):
    """Backward pass (BPTT by hand).  Returns (grads, dx), all float64."""
    p, H, D, L_layers = cache["p"], cache["H"], cache["D"], cache["num_layers"]
    B, T, _ = cache["shape"]
    S = L_layers * D
    d_out = np.asarray(d_out, dtype=np.float64)
    d_h_n = np.zeros((S, B, H)) if d_h_n is None else np.asarray(d_h_n, dtype=np.float64)
    d_c_n = np.zeros((S, B, H)) if d_c_n is None else np.asarray(d_c_n, dtype=np.float64)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    d_h0 = np.zeros((S, B, H))
    d_c0 = np.zeros((S, B, H))

    d_layer_out = d_out
    for k in range(L_layers - 1, -1, -1):
        layer_in = cache["layer_inputs"][k]
        d_layer_in = np.zeros_like(layer_in)
        for d in range(D):
            sfx = _suffix(d)
            W_ih, W_hh = p[f"weight_ih_l{k}{sfx}"], p[f"weight_hh_l{k}{sfx}"]
            g = dict(W_ih=np.zeros_like(W_ih), W_hh=np.zeros_like(W_hh),
                     b=np.zeros(4 * H))
            for b in range(B):
                order, steps = cache["records"][k][d][b]
                d_hs = d_layer_out[b, order, d * H:(d + 1) * H]
                d_xs, dh0, dc0 = _backprop_sequence(W_ih, W_hh, steps, d_hs,
                                                    d_h_n[k * D + d, b], d_c_n[k * D + d, b], g)
                d_layer_in[b, order] += d_xs
                d_h0[k * D + d, b] = dh0
                d_c0[k * D + d, b] = dc0
            grads[f"weight_ih_l{k}{sfx}"] += g["W_ih"]
            grads[f"weight_hh_l{k}{sfx}"] += g["W_hh"]
            grads[f"bias_ih_l{k}{sfx}"] += g["b"]
            grads[f"bias_hh_l{k}{sfx}"] += g["b"]
        d_layer_out = d_layer_in
    if cache["has_h0"]:
        grads["h0"] = d_h0
    if cache["has_c0"]:
        grads["c0"] = d_c0
    return grads, d_layer_out


def lstm_loss_and_grads(params, x, h0=None, c0=None, lengths=None,
                        d_out=None, d_h_n=None, d_c_n=None):
    """Convenience: forward + backward of the linear loss
    sum(d_out*out) + sum(d_h_n*h_n) + sum(d_c_n*c_n).

    Returns (loss, out, h_n, c_n, grads, dx).
    """
    out, h_n, c_n, cache = lstm_forward(params, x, h0, c0, lengths)
    loss = 0.0
    if d_out is not None:
        loss += float(np.sum(d_out * out))
    if d_h_n is not None:
        loss += float(np.sum(d_h_n * h_n))
    if d_c_n is not None:
        loss += float(np.sum(d_c_n * c_n))
    if d_out is None:
        d_out = np.zeros_like(out)
    grads, dx = lstm_backward(params, cache, d_out, d_h_n, d_c_n)
    return loss, out, h_n, c_n, grads, dx


# --------------------------------------------------------------------------- GRU, RNN
# Plain-loop references of torch.nn.GRU and torch.nn.RNN (batch_first=True), with the
# conventions above: gate order r, z, n (GRU), one gate (RNN); params keyed like torch;
# h0/h_n (num_layers * D, batch, H); packed-sequence semantics for ``lengths``.
#
#   GRU:  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
#         z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
#         n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
#         h' = (1 - z) * n + z * h
#   RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu
#
# Public API::
#
#     out, h_n, cache = cell_forward(cell, params, x, h0=None, lengths=None)
#     grads, dx = cell_backward(cache, d_out, d_h_n=None)
#
# with cell in {"gru", "rnn_tanh", "rnn_relu"}.

CELL_GATES = {"gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def init_cell_params(cell, input_size, hidden_size, num_layers=1, bidirectional=False,
                     rng=None, scale=None):
    """Random float64 weights for a GRU or RNN with torch's key names."""
    rng = np.random.default_rng(rng)
    if scale is None:
        scale = 1.0 / np.sqrt(hidden_size)
    G = CELL_GATES[cell]
    D = 2 if bidirectional else 1
    params = {}
    for name in param_names(num_layers, bidirectional):
        k = int(name.split("_l")[1].split("_")[0])
        in_k = input_size if k == 0 else D * hidden_size
        if name.startswith("weight_ih"):
            shape = (G * hidden_size, in_k)
        elif name.startswith("weight_hh"):
            shape = (G * hidden_size, hidden_size)
        else:
            shape = (G * hidden_size,)
        params[name] = rng.uniform(-scale, scale, size=shape)
    return params


def _cell_step(cell, W_ih, W_hh, b_ih, b_hh, x, h):
    """One step; returns the new state and what backprop needs."""
    H = h.shape[0]
    gi = W_ih @ x + b_ih
    gh = W_hh @ h + b_hh
    if cell == "gru":
        r = _sigmoid(gi[:H] + gh[:H])
        z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        h_new = (1.0 - z) * n + z * h
        return h_new, dict(x=x, h=h, r=r, z=z, n=n, ghn=gh[2 * H:])
    a = gi + gh
    h_new = np.tanh(a) if cell == "rnn_tanh" else np.maximum(a, 0.0)
    return h_new, dict(x=x, h=h, a=a, h_new=h_new)


def _cell_step_back(cell, W_ih, W_hh, st, dh, g):
    """Backprop one step: accumulates into g (W_ih, W_hh, b_ih, b_hh); returns (dx, dh_prev)."""
    if cell == "gru":
        r, z, n, h = st["r"], st["z"], st["n"], st["h"]
        dn = dh * (1.0 - z)
        dz = dh * (h - n)
        dan = dn * (1.0 - n ** 2)          # w.r.t. the argument of tanh
        dr = dan * st["ghn"]
        dar = dr * r * (1.0 - r)
        daz = dz * z * (1.0 - z)
        d_gi = np.concatenate([dar, daz, dan])
        d_gh = np.concatenate([dar, daz, dan * r])
        dh_prev = dh * z + W_hh.T @ d_gh
    else:
        if cell == "rnn_tanh":
            da = dh * (1.0 - st["h_new"] ** 2)
        else:
            da = dh * (st["a"] > 0)
        d_gi = d_gh = da
        dh_prev = W_hh.T @ d_gh
    g["W_ih"] += np.outer(d_gi, st["x"])
    g["W_hh"] += np.outer(d_gh, st["h"])
    g["b_ih"] += d_gi
    g["b_hh"] += d_gh
    return W_ih.T @ d_gi, dh_prev


def cell_forward(cell, params, x, h0=None, lengths=None):
    """Forward pass of a GRU or RNN.  Returns (out, h_n, cache), all float64."""
    L_layers, D, _, H = describe(params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    lengths = _check_lengths(lengths, B, T)
    S = L_layers * D
    h_init = np.zeros((S, B, H)) if h0 is None else np.asarray(h0, dtype=np.float64)
    h_n = np.zeros((S, B, H))
    layer_in = x
    records, layer_inputs = [], []
    for k in range(L_layers):
        layer_inputs.append(layer_in)
        layer_out = np.zeros((B, T, D * H))
        rec_k = []
        for d in range(D):
            sfx = _suffix(d)
            W = [p[f"{kind}_l{k}{sfx}"] for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                     "bias_hh")]
            rec_d = []
            for b in range(B):
                n_steps = lengths[b]
                order = range(n_steps) if d == 0 else range(n_steps - 1, -1, -1)
                h = h_init[k * D + d, b]
                steps = []
                for t in order:
                    h, st = _cell_step(cell, *W, layer_in[b, t], h)
                    st["t"] = t
                    steps.append(st)
                    layer_out[b, t, d * H:(d + 1) * H] = h
                h_n[k * D + d, b] = h
                rec_d.append(steps)
            rec_k.append(rec_d)
        records.append(rec_k)
        layer_in = layer_out
    cache = dict(cell=cell, records=records, layer_inputs=layer_inputs, p=p, H=H, D=D,
                 num_layers=L_layers, shape=x.shape, has_h0=h0 is not None)
    return layer_in, h_n, cache


def cell_backward(cache, d_out, d_h_n=None):
    """Backward pass (BPTT by hand) of :func:`cell_forward`.  Returns (grads, dx)."""
    cell, p, H, D = cache["cell"], cache["p"], cache["H"], cache["D"]
    L_layers = cache["num_layers"]
    B, T, _ = cache["shape"]
    S = L_layers * D
    d_h_n = np.zeros((S, B, H)) if d_h_n is None else np.asarray(d_h_n, dtype=np.float64)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    d_h0 = np.zeros((S, B, H))
    d_layer_out = np.asarray(d_out, dtype=np.float64)
    for k in range(L_layers - 1, -1, -1):
        d_layer_in = np.zeros_like(cache["layer_inputs"][k])
        for d in range(D):
            sfx = _suffix(d)
            W_ih, W_hh = p[f"weight_ih_l{k}{sfx}"], p[f"weight_hh_l{k}{sfx}"]
            g = dict(W_ih=np.zeros_like(W_ih), W_hh=np.zeros_like(W_hh),
                     b_ih=np.zeros(W_ih.shape[0]), b_hh=np.zeros(W_ih.shape[0]))
            for b in range(B):
                dh = d_h_n[k * D + d, b].copy()
                for st in reversed(cache["records"][k][d][b]):
                    t = st["t"]
                    dh = dh + d_layer_out[b, t, d * H:(d + 1) * H]
                    dx_t, dh = _cell_step_back(cell, W_ih, W_hh, st, dh, g)
                    d_layer_in[b, t] += dx_t
                d_h0[k * D + d, b] = dh
            grads[f"weight_ih_l{k}{sfx}"] += g["W_ih"]
            grads[f"weight_hh_l{k}{sfx}"] += g["W_hh"]
            grads[f"bias_ih_l{k}{sfx}"] += g["b_ih"]
            grads[f"bias_hh_l{k}{sfx}"] += g["b_hh"]
        d_layer_out = d_layer_in
    if cache["has_h0"]:
        grads["h0"] = d_h0
    return grads, d_layer_out


# ------------------------------------------------------------- LSTM options (forward)
def lstm_options_forward(params, x, h0=None, c0=None, lengths=None):
    """Forward pass of an LSTM with peepholes and/or a projection, from the equations.

    ``params`` has torch's keys plus, per layer and direction, ``weight_ci``,
    ``weight_cf``, ``weight_co`` (H,) for peepholes and ``weight_hr`` (P, H) for a
    projection::

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi + w_ci * c_prev)
        f = sigmoid(W_if x + b_if + W_hf h + b_hf + w_cf * c_prev)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c = f * c_prev + i * g
        o = sigmoid(W_io x + b_io + W_ho h + b_ho + w_co * c)
        h = W_hr (o * tanh(c))          (without a projection: o * tanh(c))

    Returns (out, h_n, c_n), float64.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    num_layers = 0
    while f"weight_ih_l{num_layers}" in p:
        num_layers += 1
    D = 2 if "weight_ih_l0_reverse" in p else 1
    H = p["weight_ih_l0"].shape[0] // 4
    R = p["weight_hh_l0"].shape[1]
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    lengths = _check_lengths(lengths, B, T)
    h_init = np.zeros((num_layers * D, B, R)) if h0 is None else np.asarray(h0, np.float64)
    c_init = np.zeros((num_layers * D, B, H)) if c0 is None else np.asarray(c0, np.float64)
    h_n = np.zeros_like(h_init)
    c_n = np.zeros_like(c_init)
    layer_in = x
    for k in range(num_layers):
        layer_out = np.zeros((B, T, D * R))
        for d in range(D):
            sfx = _suffix(d)

            def w(name, default=None):
                return p.get(f"{name}_l{k}{sfx}", default)

            zeros = np.zeros(H)
            w_ci, w_cf, w_co = w("weight_ci", zeros), w("weight_cf", zeros), w("weight_co", zeros)
            W_hr = w("weight_hr")
            for b in range(B):
                h, c = h_init[k * D + d, b], c_init[k * D + d, b]
                order = range(lengths[b]) if d == 0 else range(lengths[b] - 1, -1, -1)
                for t in order:
                    z = (w("weight_ih") @ layer_in[b, t] + w("bias_ih") + w("weight_hh") @ h
                         + w("bias_hh"))
                    i = _sigmoid(z[:H] + w_ci * c)
                    f = _sigmoid(z[H:2 * H] + w_cf * c)
                    g = np.tanh(z[2 * H:3 * H])
                    c = f * c + i * g
                    o = _sigmoid(z[3 * H:] + w_co * c)
                    h = o * np.tanh(c)
                    if W_hr is not None:
                        h = W_hr @ h
                    layer_out[b, t, d * R:(d + 1) * R] = h
                h_n[k * D + d, b], c_n[k * D + d, b] = h, c
        layer_in = layer_out
    return layer_in, h_n, c_n
