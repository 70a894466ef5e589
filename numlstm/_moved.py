"""Module paths of earlier numlstm versions, still importable.

Pickles name the module of every class they hold, so an estimator or layer pickled by an
earlier version refers to ``numlstm.layers.LSTM``, ``numlstm.network.LSTMNetwork`` or
``numlstm.optimizers.AdamOptimizer``. A finder on :data:`sys.meta_path` answers those old
names with the modules that hold the classes now, so such pickles load, and code that
imported the old public modules keeps working.
"""

import importlib
import importlib.abc
import importlib.util
import sys

#: Old module name -> the module that replaces it.
MOVED_MODULES = {
    "numlstm.layers": "numlstm.nn",
    "numlstm.network": "numlstm.nn.network",
    "numlstm.losses": "numlstm.nn.losses",
    "numlstm.optimizers": "numlstm.training.optimizers",
    "numlstm.interop": "numlstm.io.pytorch",
}


class _Alias(importlib.abc.Loader):
    """Loads an old name as a small module whose attributes are those of the new module
    (the new module itself is left untouched)."""

    def __init__(self, target):
        self._target = target

    def create_module(self, spec):
        return None  # a plain new module

    def exec_module(self, module):
        target = importlib.import_module(self._target)
        module.__doc__ = f"Moved to :mod:`{self._target}`."
        module.__all__ = list(getattr(target, "__all__", ()))
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dir__ = lambda: dir(target)


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new_name = MOVED_MODULES.get(fullname)
        if new_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new_name))


def install():
    """Put the finder on :data:`sys.meta_path` (once)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
