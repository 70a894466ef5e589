"""Writing files so that a crash never destroys what a user saved."""

import os
import secrets

__all__ = ["atomic_write"]


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (best effort: not possible everywhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Write ``path`` through ``write(file)`` so that readers see the old or the new file.

    The content goes to a temporary file beside ``path``, is flushed to disk, and then
    replaces ``path`` in one rename. A failure (or a crash) at any moment leaves the previous
    file intact; the temporary file is removed on failure. A replaced file keeps its
    permissions. A symbolic link stays one: the file it points to is replaced.

    Parameters
    ----------
    path : str or path-like
    write : callable
        Called with the open binary file; writes the whole content.
    """
    # Through a symbolic link to its target: renaming onto the link itself would turn it
    # into a file of its own and leave the target (say, a shared model) as it was.
    given = os.fspath(path)
    path = os.path.realpath(given)
    directory, base = os.path.split(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
        replacing = True
    except FileNotFoundError:
        mode = 0o666  # minus the umask, as for any new file
        replacing = False
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as error:
        # Name the user's path, not the temporary file's (a missing folder, say).
        raise OSError(error.errno, f"cannot write {given!r}: {error.strerror}",
                      given) from None
    try:
        if replacing and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # os.open's mode is reduced by the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
