"""Scratch memory that a layer keeps between kernel calls."""

import numpy as np

__all__ = ["NoWorkspace", "Workspace"]


class Workspace:
    """Scratch arrays kept between calls, so repeated batches of one shape allocate nothing.

    Large fresh arrays cost page faults on first touch every time; a training loop calls
    the kernels with the same shapes thousands of times. Arrays handed out here are
    overwritten by the next call that asks for the same name: never return them to users.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype, allocate=np.empty):
        """Return an uninitialised array of ``shape`` and ``dtype`` registered as ``name``.

        ``allocate(shape, dtype)`` makes a new one when needed (e.g. a device allocator).
        """
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = allocate(shape, dtype)
            self._arrays[name] = array
        return array

    def memo(self, name, factory):
        """The object registered as ``name``, made by ``factory()`` on first request
        (what is worth keeping between calls besides arrays)."""
        value = self._arrays.get(name)
        if value is None:
            value = self._arrays[name] = factory()
        return value

    def clear(self):
        """Drop every array."""
        self._arrays.clear()


class NoWorkspace:
    """A stand-in for :class:`Workspace` that allocates a new array on every request."""

    @staticmethod
    def get(name, shape, dtype, allocate=np.empty):
        return allocate(shape, dtype)

    @staticmethod
    def memo(name, factory):
        return factory()
