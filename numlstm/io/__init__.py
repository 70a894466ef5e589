"""Reading and writing models: numlstm's model files (:mod:`numlstm.io.model_files`) and
weights exchanged with PyTorch (:mod:`numlstm.io.pytorch`), and export to ONNX
(:mod:`numlstm.io.onnx`, which imports the optional ``onnx`` package only when called)."""

from .model_files import FORMAT_VERSION, ModelFileError, load, read_header, save
from .onnx import to_onnx

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_header", "save", "to_onnx"]
