"""Atomic file writing: a temp file in the target folder, then ``os.replace``.

Files get the mode a plain ``open`` would give them (``0666`` less the process umask, so
``0644`` under the usual ``022``): ``mkstemp`` alone makes them ``0600``, unreadable to a
colleague. A write that fails for a reason of the file system (a file where a folder should
be, no permission, disk full) raises :class:`~vertebrafat.core.errors.OutputError` naming the
target, and leaves neither the target changed nor a temp file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vertebrafat.core.errors import OutputError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
"""The process umask, read once at import (reading it means setting it)."""


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """``exc`` as one line naming ``path`` and the reason in words."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (Path(path), *Path(path).parents)
                        if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return OutputError(f"{path}: cannot write ({blocker} is a file, not a folder)")
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EISDIR: "a folder is in the way of a file",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return OutputError(f"{path}: cannot write ({reason})")


def make_readable(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Give ``path`` the mode ``open``/``mkdir`` would (``0666``/``0777`` less the umask)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~UMASK)


@contextlib.contextmanager
def output_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into :class:`OutputError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise output_error(path, exc) from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the suffixes of ``path`` (``.nii.gz``), so writers that infer the
    format from the name still work. On any exception the temporary file is removed and
    ``path`` is untouched; an ``OSError`` becomes :class:`OutputError` naming ``path``.
    """
    target = Path(path)
    suffix = "".join(target.suffixes)
    with output_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix,
                                        dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            make_readable(tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
