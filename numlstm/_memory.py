"""How much memory this process may still use, to refuse work that cannot fit."""

import os

__all__ = ["available_memory", "check_fits", "format_bytes"]


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


def format_bytes(n_bytes):
    """``n_bytes`` in GiB, for messages."""
    return f"{n_bytes / 2**30:.1f} GiB"


def check_fits(n_bytes, what):
    """Raise MemoryError, before allocating, when ``n_bytes`` exceed the available memory.

    ``what`` completes the sentence "... needs about X" in the message.
    """
    available = available_memory()
    if available is not None and n_bytes > available:
        raise MemoryError(f"{what} needs about {format_bytes(n_bytes)} of memory, but only "
                          f"{format_bytes(available)} is available")
