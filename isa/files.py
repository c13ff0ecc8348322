"""Reading input files boundedly and writing output files safely.

Every file toyvisor writes (images, generated docs, reports) goes through `write_atomic` (a
temporary name in the same directory, then an atomic rename), so an interrupted or failed write
never leaves a partial file behind.  Input files a user names go through `read_bounded`, so a
device (``/dev/zero``), a FIFO or a huge file is refused instead of read for ever.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from pathlib import Path


def _new_file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path`: readers see the old file or the whole new one, never a part.

    The bytes go to a temporary file in the same directory, flushed to disk, then renamed over
    `path` (an existing file keeps its permissions; a symbolic link keeps pointing at the new
    file; a device or FIFO such as ``/dev/null`` is written through, never replaced). On any failure, Ctrl-C included, the
    temporary file is removed and the error (an `OSError` for file-system problems) propagates.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # replace what the link names, not the link
    if path.exists() and not path.is_file():
        # a device or FIFO (``-o /dev/null``): renaming over it would replace the device node
        # itself, so write through it; a directory fails here with IsADirectoryError
        with open(path, "wb") as stream:
            stream.write(data)
        return
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _new_file_mode()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                     dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them: the one opener of
    every input file toyvisor reads.

    Raises `OSError` when it cannot be read and `ValueError` (with the reason) when it is not a
    regular file or is larger than `limit` bytes: a device or FIFO may never end.  The file is
    opened without blocking (a FIFO with no writer would block ``open`` itself for ever) and
    refused before a byte is read unless it is a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({file_kind(mode)})")
        os.set_blocking(fd, True)
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"file too large (more than {limit} bytes)")
    return data


def parse_toml(text: str) -> dict:
    """`tomllib.loads`, with a document nested too deeply for its recursive parser reported as
    the `tomllib.TOMLDecodeError` (a `ValueError`) it is, not a `RecursionError`."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply") from None


def file_kind(mode: int) -> str:
    """What a file of `mode` (``st_mode``) is, in a user's words ("a FIFO", "a directory" …)."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a file"
