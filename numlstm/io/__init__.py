"""Reading and writing models: numlstm's model files (:mod:`numlstm.io.model_files`) and
weights exchanged with PyTorch (:mod:`numlstm.io.pytorch`)."""

from .model_files import FORMAT_VERSION, ModelFileError, load, read_header, save

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "read_header", "save"]
