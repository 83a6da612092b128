"""The lock a training run holds on its folder, so that two runs never write into one folder at once.

:func:`hold_run_folder` takes it before anything is written in ``--out-dir`` and lets it go when
the run ends: normally, by an error, or by Ctrl-C. A second run into the folder meanwhile is
refused with :class:`~lossnet.errors.RunFolderInUseError`, which names the first run's pid and host.

The lock is an OS advisory lock (``fcntl.flock``) on :data:`LOCK_FILE` in the folder; the file
holds the holder's pid, host and start time for that message. The kernel drops the lock when the
process dies, so a run killed with ``kill -9`` leaves the file but not the lock, and the next run
(a ``--resume``, or a new run with ``--overwrite``) takes it over. The file is no run file
(:func:`~lossnet.train.runs.run_files`): it never makes a folder look occupied, and ``--overwrite``
leaves it alone. A run that ends removes it, and removes the folder too when the run made the
folder and wrote nothing else into it (a mistake found after the lock was taken).

Under ``torchrun``, rank 0 (the process that writes) holds the lock, and every rank learns whether
it got it, so that a refused job stops on every rank instead of waiting for rank 0.

Where Python has no ``fcntl`` (Windows) or the file system refuses ``flock`` (some network
mounts), the folder is not locked and a warning says so: do not start two runs into one folder there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossnet.errors import RunFolderInUseError
from lossnet.train.distributed import World, on_rank_0
from lossnet.train.runs import check_occupied, check_writable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file's name in a run folder.
LOCK_FILE = ".lossnet.lock"
log = logging.getLogger("lossnet")
_HELD: set[int] = set()  # the descriptors of the locks this process holds
_BUSY = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}  # flock's "another process holds it"


def _close_in_child() -> None:
    """In a forked child (a DataLoader worker), close the lock files it inherited.

    A fork shares the open file that ``flock`` belongs to: a child that kept it would hold the
    lock after its parent was killed, until the child ended too. The parent's lock stays.
    """
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class RunLock:
    """The lock on one run folder, held by this process from :meth:`acquire` to :meth:`release`.

    Attributes:
        path: the lock file; ``made``: the folders :meth:`acquire` created, deepest first.
    """

    def __init__(self, path: Path, fd: int, made: list[Path]) -> None:
        self.path, self.fd, self.made = path, fd, made

    @classmethod
    def acquire(cls, folder: Path) -> RunLock | None:
        """Lock ``folder`` (created if missing) for this process; ``None`` where it cannot be locked.

        Raises:
            RunFolderInUseError: another process holds the lock.
        """
        if fcntl is None:
            log.warning("this platform has no fcntl, so %s is not locked: start no second run into it", folder)
            return None
        made = _make_folder(folder)
        path = folder / LOCK_FILE
        try:
            for _ in range(100):  # each retry follows a run that ended between our open and our lock
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                except FileNotFoundError:  # that run removed the folder it had made
                    made += _make_folder(folder)
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as err:
                    os.close(fd)
                    if err.errno in _BUSY:
                        raise _in_use(folder, path) from None
                    log.warning("%s cannot be locked here (%s): start no second run into it", folder, err.strerror)
                    path.unlink(missing_ok=True)
                    _remove_empty(made)
                    return None
                if _same_file(fd, path):
                    break
                os.close(fd)  # a file that run removed as it ended: lock the one now at `path`
            else:
                raise OSError(errno.EBUSY, "runs keep starting and ending in this folder", str(path))
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)  # a killed run's pid and host
            os.write(fd, (json.dumps(info) + "\n").encode())
        except BaseException:
            _remove_empty(made)
            raise
        _HELD.add(fd)
        return cls(path, fd, made)

    def release(self) -> None:
        """Remove the lock file and unlock it, then remove the folders :meth:`acquire` made if they are empty."""
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        _HELD.discard(fd)
        try:
            if _same_file(fd, self.path):
                self.path.unlink()  # first: a run that opened it meanwhile finds it gone and makes a new one
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        _remove_empty(self.made)


def look_at_run_folder(folder: Path, resume: Path | None, overwrite: bool) -> None:
    """A first look at ``folder`` before anything costly, touching nothing (the look under the lock decides).

    Raises:
        RunFolderInUseError: a live run holds its lock.
        InputError: it is a file, cannot be created or written, or holds another run (see
            :func:`~lossnet.train.runs.check_occupied`).
    """
    check_writable(folder)
    path = folder / LOCK_FILE
    if fcntl is not None and path.is_file():
        with contextlib.suppress(OSError), open(path, "rb") as peek:
            try:
                fcntl.flock(peek.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in _BUSY:
                    raise _in_use(folder, path) from None
    check_occupied(folder, resume, overwrite)


@contextlib.contextmanager
def hold_run_folder(folder: Path, world: World) -> Iterator[RunLock | None]:
    """Hold the lock on run folder ``folder`` for the ``with`` block.

    Rank 0 checks that the folder can be made and written, and locks it; under ``torchrun`` the
    other ranks hold nothing but raise rank 0's error too.

    Raises:
        RunFolderInUseError: another run holds the folder.
        InputError: ``folder`` is a file, or cannot be created or written.
    """
    def take() -> RunLock | None:
        check_writable(folder)
        return RunLock.acquire(folder)

    lock = on_rank_0(world, take)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


def _in_use(folder: Path, path: Path) -> RunFolderInUseError:
    info = _holder(path)
    pid = info.get("pid") if isinstance(info.get("pid"), int) else None
    host = info.get("host") if isinstance(info.get("host"), str) else None
    who = f"pid {pid} on {host}, started {info.get('started')}" if pid is not None else f"no pid in {path} yet"
    return RunFolderInUseError(
        f"--out-dir {folder} is in use by another training run ({who}); "
        "wait for it to end (then resume it, or --overwrite it), or give another --out-dir",
        pid=pid,
        host=host,
    )


def _holder(path: Path) -> dict[str, Any]:
    """What the lock file says of its holder; it writes that right after locking, so wait a moment for it."""
    for _ in range(50):
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
            if isinstance(info, dict):
                return info
        time.sleep(0.01)
    return {}


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those it created, deepest first."""
    missing, p = [], folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            return
