"""The lock that serialises two exports deciding about one registered model on one machine, in a
folder only this user can write (machines sharing a tracking server cannot share it: see
pipelines.tracking.registry for what they do instead)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from pipelines.core.errors import TrackingError


def lock_dir() -> Path:
    """A folder for lock files that only this user can write: a lock file in a shared folder such as
    /tmp could be planted as a link to another file, which opening it would then follow."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _private(Path(runtime)):
        base = Path(runtime)
    else:  # unset, or not this user's (after su): a folder of our own under the temporary folder
        base = Path(tempfile.gettempdir()) / f"nlp-pipelines-{os.getuid()}"
        _make_private(base)
    folder = base / "nlp-pipelines-locks"
    _make_private(folder)
    return folder


def _private(path: Path) -> bool:
    info = os.lstat(path)
    return not stat.S_ISLNK(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _make_private(folder: Path) -> None:
    """Create ``folder`` as 0700 (whatever the umask), or check that an existing one is ours alone."""
    try:
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    except FileExistsError:
        pass
    if not _private(folder):
        raise TrackingError(f"lock folder {folder} is a link, not owned by this user, or writable by others; "
                            "remove it (it holds only lock files) and re-run")


@contextlib.contextmanager
def _registry_lock(name: str) -> Iterator[None]:
    """Serialise champion decisions of exports on this machine (two at once must not both win)."""
    path = lock_dir() / f"{name}.lock"
    # No O_TRUNC (the file's content is never touched) and no following a link put in its place.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TrackingError(f"cannot open the registry lock {path} ({exc.strerror}); if it is a link, remove it "
                            "and re-run") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
