"""Output files that appear whole or not at all, without clobbering what the path names.

``atomic_write(path, write)`` is what every ``-o`` goes through (models, text output; the
token files of ``token_files`` use the helpers below for their own staging):

* A regular file (or nothing yet) at ``path``: the bytes go to a temporary file beside
  it, named ``.NAME.vsample-tmp-XXXXXXXX`` so a leftover is easy to recognise, which is
  flushed, fsynced and renamed over ``path``.  A crash or an exception leaves the old file
  (or nothing), never a truncated file that looks complete.
* A symlink: the same, for the file it points to (the temporary file goes beside the
  target, so the rename stays on one file system); the link stays a link.
* A FIFO or a device (``/dev/null``, ``/dev/stdout`` on a pipe or a terminal): written
  through, as a shell redirection would.  Renaming over it would replace the device node
  or the pipe with a regular file.

Interruptions: an exception (``KeyboardInterrupt`` for SIGINT included) unwinds through
``atomic_write`` and removes the temporary file.  SIGTERM kills a Python process without
unwinding unless a handler turns it into an exception; the ``vsample`` command installs
one (``cli.main``).  A library caller that wants the same must do likewise.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Callable, NamedTuple

TEMP_MARK = ".vsample-tmp-"
NEW_FILE_MODE = 0o644  # a model or token file is meant to be shared


class Destination(NamedTuple):
    """Where the bytes for an output path really go."""

    path: Path  # the file to replace (symlinks resolved), or the path to write through
    write_through: bool  # a FIFO or a device: open and write it, never replace it
    mode: int  # permission bits for a replacement: the old file's, or NEW_FILE_MODE


def destination(path: str | os.PathLike) -> Destination:
    """Classify ``path`` as an output (see the module docstring); raises for a directory."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        # A new file, or a dangling symlink: create what the link names, as a shell would.
        return Destination(Path(os.path.realpath(path)), False, NEW_FILE_MODE)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"output is a directory, not a file: {path}")
    if not stat.S_ISREG(st.st_mode):
        return Destination(path, True, 0)
    target = Path(os.path.realpath(path))
    try:
        same = os.path.samestat(st, os.stat(target))
    except OSError:
        same = False
    if not same:
        # A "magic" link such as /proc/self/fd/N, which realpath cannot follow to the
        # file the descriptor holds: write through it.
        return Destination(path, True, 0)
    return Destination(target, False, stat.S_IMODE(st.st_mode))


def temp_path(target: Path) -> Path:
    """A fresh name for a temporary file or folder beside ``target``: hidden, marked ours.

    The name comes before the file, so a caller creates it inside its ``try`` and a
    signal can never land between the creation and the cleanup that would remove it
    (``mkstemp`` returning has such a gap).  64 random bits: a clash is not a concern.
    """
    return target.parent / f".{target.name}{TEMP_MARK}{secrets.token_hex(8)}"


def check_output_folder(path: str | os.PathLike) -> None:
    """Fail fast, before any long work, when ``path`` cannot be written: its folder is
    missing or not writable (a FIFO or device is checked when it is opened)."""
    dest = destination(path)
    if dest.write_through:
        return
    folder = dest.path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {folder}")


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it into place
    (or write straight through a FIFO or device; see the module docstring)."""
    dest = destination(path)
    if dest.write_through:
        with open(dest.path, "wb") as f:
            write(f)
        return
    tmp = temp_path(dest.path)
    try:
        with open(tmp, "xb", opener=_private) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, dest.mode)
        os.replace(tmp, dest.path)
    except BaseException:
        _remove(tmp)
        raise
    fsync_folder(dest.path.parent)


def publish(staged: Path, dest: Destination) -> None:
    """Put the finished file ``staged`` at ``dest`` (from ``destination``, taken before
    the work): renamed over the file, or copied through a FIFO or device.  ``staged``
    should be on the target's file system; if not, it is copied beside the target first."""
    if dest.write_through:
        with open(staged, "rb") as src, open(dest.path, "wb") as out:
            _copy(src, out)
        return
    os.chmod(staged, dest.mode)
    try:
        os.replace(staged, dest.path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with open(staged, "rb") as src:
            atomic_write(dest.path, lambda out: _copy(src, out))
        return
    fsync_folder(dest.path.parent)


def _private(path: str, flags: int) -> int:
    """Open for ``open(..., opener=)``: readable by the owner only until it is complete
    (the file it replaces may have been private)."""
    return os.open(path, flags, 0o600)


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    while chunk := src.read(1 << 20):
        out.write(chunk)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
