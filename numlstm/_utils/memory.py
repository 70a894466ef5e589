"""How much memory this process may still use (in RAM, or on the GPU), to refuse work that
cannot fit before allocating it."""

import math
import os

__all__ = ["available_device_memory", "available_memory", "check_fits", "format_bytes"]


def _cgroup_headroom():
    """Bytes left under this process's cgroup (v2) memory limit, or None."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None


def available_memory():
    """Bytes of memory available to this process now, or None when unknown.

    The system's available memory (``MemAvailable``), lowered to what a container's
    memory limit leaves, where there is one.
    """
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    headroom = _cgroup_headroom()
    if headroom is not None:
        available = headroom if available is None else min(available, headroom)
    return available


def available_device_memory():
    """Bytes free on the current CUDA device now, or None when unknown.

    Unknown covers a missing GPU or driver and numba's CUDA simulator (which reports an
    infinite memory).
    """
    try:
        from numba import cuda

        free = cuda.current_context().get_memory_info().free
    except Exception:  # no driver, no device, or a context that cannot be made
        return None
    return int(free) if math.isfinite(free) else None


def format_bytes(n_bytes):
    """``n_bytes`` in GiB, for messages."""
    return f"{n_bytes / 2**30:.1f} GiB"


def check_fits(n_bytes, what, device="cpu"):
    """Raise MemoryError, before allocating, when ``n_bytes`` exceed the available memory.

    ``what`` completes the sentence "... needs about X"; ``device`` is where the memory
    would be taken: ``"cpu"`` (RAM) or ``"cuda"`` (the current GPU).
    """
    if device == "cuda":
        available, kind, where = available_device_memory(), "GPU memory", "free on the GPU"
    else:
        available, kind, where = available_memory(), "memory", "available"
    if available is not None and n_bytes > available:
        raise MemoryError(f"{what} needs about {format_bytes(n_bytes)} of {kind}, but only "
                          f"{format_bytes(available)} is {where}")
