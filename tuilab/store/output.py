"""Writing a file the user named: only where it is safe, and atomically.

A regular file is replaced by writing a temporary file in the same folder and
renaming it over the target, so a crash leaves the old file or the new one,
never half of each. Everything else is refused with a sentence unless the
user passes `force`: a symlink (it points elsewhere), a FIFO or device (a
rename would replace the node; writing would block or vanish), a read-only
file. A directory and the lab's own database files are refused even then.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeTarget(Exception):
    """The target is not a file tuilab should write; `str()` says why and what to do."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def refuse_file_in_the_way(path: Path, error: type[Exception]) -> None:
    """Raise `error` when the nearest existing folder above `path` is a file instead: `path` cannot be created."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise error(f"{path}: {parent} is a file, not a folder")
            return


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_target(path: str | os.PathLike, *, force: bool = False, protect: tuple[Path, ...] = ()) -> Path:
    """The path to write, or UnsafeTarget. `protect`: files never to overwrite (the lab database)."""
    path = Path(path)
    for guarded in protect:
        for suffix in ("", "-wal", "-shm", "-journal"):
            other = guarded.with_name(guarded.name + suffix)
            if _same_file(path, other) or path.resolve() == other.resolve():
                raise UnsafeTarget(f"{path} is the lab's database; refusing to overwrite it")
    refuse_file_in_the_way(path, UnsafeTarget)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if not force:
            raise UnsafeTarget(f"{path} is a symlink to {target}; refusing to replace it "
                               "(pass --force to write through it)")
        try:
            st = path.stat()
        except OSError as exc:
            raise UnsafeTarget(f"{path} is a symlink to {target}, which cannot be written: "
                               f"{exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeTarget(f"{path} is a directory; name a file to write")
    if not stat.S_ISREG(st.st_mode):
        if not force:
            raise UnsafeTarget(f"{path} is {_kind(st.st_mode)}; refusing to write to it "
                               "(pass --force to write into it anyway)")
        return path
    if not st.st_mode & 0o222 and not force:
        raise UnsafeTarget(f"{path} is read-only; refusing to replace it (pass --force to replace it)")
    return path


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to a path `check_target` accepted.

    A regular or new file is replaced atomically (temporary file, fsync,
    rename, same folder; the old file's permissions kept). A FIFO or device
    the user forced is written in place.
    """
    path = Path(path)
    real = path.resolve() if path.is_symlink() else path
    if real.exists() and not real.is_file():
        with open(real, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    real.parent.mkdir(parents=True, exist_ok=True)
    mode = real.stat().st_mode & 0o7777 if real.exists() else None
    tmp = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, real)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        dir_fd = os.open(real.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
