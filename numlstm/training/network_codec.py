"""The value kinds of model files and checkpoints that hold a recurrent layer
(``$lstm``) or a network (``$network``); see :mod:`numlstm.io` for their fields.

Built on the generic container of :mod:`numlstm._utils.array_container`; used by the
model files (:mod:`numlstm.io.model_files`) and the checkpoints
(:mod:`numlstm.training.checkpoints`).
"""

import numpy as np

from .._utils.array_container import ValueDecoder, ValueEncoder
from ..nn import GRU, LSTM, RNN
from ..nn import LSTMNetwork
from ..nn.readout import READOUTS, readout_width

__all__ = ["LAYERS", "NetworkDecoder", "NetworkEncoder"]

#: Layer classes by the name a file gives them.
LAYERS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
_CELL_CLASSES = {cls.cell: cls for cls in LAYERS.values()}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class NetworkEncoder(ValueEncoder):
    """:class:`ValueEncoder` that also stores layers and networks."""

    def encode_other(self, value, where):
        if type(value) in LAYERS.values():
            return {"$lstm": self.lstm(value)}
        if type(value) is LSTMNetwork:
            return {"$network": self.network(value)}
        return None

    def lstm(self, layer):
        spec = {
            "cell": layer.cell,
            "input_size": layer.input_size, "hidden_size": layer.hidden_size,
            "num_layers": layer.num_layers, "bidirectional": layer.bidirectional,
            "dropout": layer.dropout, "input_dropout": layer.input_dropout,
            "dtype": layer.dtype.name, "device": layer.device,
            "training": bool(layer.training),
            "rng": self.value(getattr(layer, "_rng", None), "layer random generator"),
            "flat_parameters": self.array(layer.flat_parameters),
        }
        if layer.cell == "lstm":
            spec.update(proj_size=layer.proj_size, peephole=layer.peephole)
        elif layer.cell == "rnn":
            spec["nonlinearity"] = layer.nonlinearity
        return spec

    def network(self, net):
        return {
            "lstm": self.lstm(net.lstm), "n_outputs": int(net.n_outputs), "loss": net.loss,
            "sequence_output": bool(net.sequence_output), "readout": net.readout,
            "output_dropout": net.output_dropout,
            "coef_": self.array(net.coef_), "intercept_": self.array(net.intercept_),
        }


def _parameter_count(cell, input_size, hidden_size, num_layers, n_dirs, proj_size, peephole):
    """Weights of a layer with these sizes, in closed form (before allocating any)."""
    G, H = _GATES[cell], hidden_size
    state = proj_size or H

    def per_direction(in_size):
        return G * H * (in_size + state + 2) + (3 * H if peephole else 0) + proj_size * H

    return n_dirs * (per_direction(input_size)
                     + (num_layers - 1) * per_direction(n_dirs * state))


class NetworkDecoder(ValueDecoder):
    """:class:`ValueDecoder` that also rebuilds layers and networks."""

    def decode_other(self, tag, body):
        if tag == "$lstm":
            return self.lstm(body)
        if tag == "$network":
            return self.network(body)
        return super().decode_other(tag, body)

    def _into(self, target, name, ref):
        """Copy the array ``ref`` into ``target`` after checking its dtype and shape."""
        if not (isinstance(ref, dict) and set(ref) == {"$array"}):
            raise ValueError(f"{name} must be an $array")
        value = self.array(ref["$array"])
        if value.dtype != target.dtype or value.shape != target.shape:
            raise ValueError(f"{name} has dtype {value.dtype} and shape {value.shape}, "
                             f"expected {target.dtype} and {target.shape}")
        target[...] = value

    def _array_spec(self, ref, name):
        if not (isinstance(ref, dict) and set(ref) == {"$array"}):
            raise ValueError(f"{name} must be an $array")
        self.array(ref["$array"])  # exists
        return self.arrays[ref["$array"]]

    def lstm(self, spec):
        # Check the sizes against the stored weights before allocating anything: a
        # damaged header must not make us reserve gigabytes.
        cell = spec.get("cell", "lstm")
        if cell not in _CELL_CLASSES:
            raise ValueError(f"unknown cell {cell!r}")
        sizes = [spec[key] for key in ("input_size", "hidden_size", "num_layers")]
        proj_size = spec.get("proj_size", 0) if cell == "lstm" else 0
        if not (all(type(size) is int and size > 0 for size in sizes)
                and type(proj_size) is int and proj_size >= 0):
            raise ValueError(f"invalid layer sizes {sizes + [proj_size]}")
        peephole = spec.get("peephole", False) if cell == "lstm" else False
        if type(peephole) is not bool:
            raise ValueError(f"invalid peephole flag {peephole!r}")
        I, H, L = sizes
        D = 2 if spec["bidirectional"] else 1
        n_params = _parameter_count(cell, I, H, L, D, proj_size, peephole)
        stored = self._array_spec(spec["flat_parameters"], "layer flat_parameters")
        if stored.shape != (n_params,):
            raise ValueError(f"layer flat_parameters has shape {stored.shape}, a {cell} "
                             f"layer of these sizes has {n_params} weights")
        device = spec["device"]
        if device == "cuda":
            from ..nn.backend import resolve_device
            if resolve_device("auto") != "cuda":  # trained on a GPU, loaded without one
                device = "cpu"
        rng = self.value(spec["rng"])
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError("layer rng must be a $generator")
        state = None if rng is None else rng.bit_generator.state
        options = {}
        if cell == "lstm":
            options = dict(forget_bias=None, proj_size=proj_size, peephole=peephole)
        elif cell == "rnn":
            options = dict(nonlinearity=spec.get("nonlinearity", "tanh"))
        layer = _CELL_CLASSES[cell](
            I, H, num_layers=L, bidirectional=spec["bidirectional"],
            dropout=spec["dropout"], dtype=np.dtype(spec["dtype"]), random_state=rng,
            device=device, input_dropout=spec.get("input_dropout", 0.0), **options)
        if rng is not None:
            rng.bit_generator.state = state  # undo the draws of the initialisation
        self._into(layer.flat_parameters, "layer flat_parameters", spec["flat_parameters"])
        layer.train(spec["training"])
        return layer

    def network(self, spec):
        readout = spec.get("readout", "last")  # absent before format version 3
        if readout not in READOUTS:
            raise ValueError(f"unknown network readout {readout!r}")
        lstm = self.lstm(spec["lstm"])
        coef = self._array_spec(spec["coef_"], "network coef_")
        expected = (readout_width(readout, lstm.output_size), spec["n_outputs"])
        if coef.shape != expected:
            raise ValueError(f"network coef_ has shape {coef.shape}, expected {expected}")
        net = LSTMNetwork(lstm, spec["n_outputs"], loss=spec["loss"],
                          sequence_output=spec["sequence_output"], readout=readout,
                          # absent before format version 6
                          output_dropout=spec.get("output_dropout", 0.0))
        self._into(net.coef_, "network coef_", spec["coef_"])
        self._into(net.intercept_, "network intercept_", spec["intercept_"])
        return net
