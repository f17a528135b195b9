"""A full disk stops a stage with a message that says so and where, and leaves no output behind.

The disk is real: a tmpfs of a few kilobytes mounted for the test (the suite runs as root in CI;
elsewhere the test says why it cannot run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({proc.stderr.strip() or 'mount failed'}); run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_named_with_where_and_nothing_is_kept(tiny_disk, repo):
    shutil.copy(repo / "params.yaml", tiny_disk / "params.yaml")
    env = {"PYTHONPATH": str(repo), "PATH": os.environ["PATH"], "HOME": str(tiny_disk.parent)}
    proc = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "classification"], cwd=tiny_disk,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "the disk is full" in proc.stderr and str(tiny_disk) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # The stage's output (data/<project>/raw) was never put in place, and no temporary copy is left.
    leftovers = [str(p.relative_to(tiny_disk)) for p in tiny_disk.rglob("*") if p.is_file()]
    assert leftovers == ["params.yaml"], leftovers


def test_disk_full_recognises_what_sqlite_and_the_os_raise():
    import errno
    import sqlite3

    from pipelines.cli.main import disk_full

    assert "the disk is full" in disk_full(OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    wrapped = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("registry update failed") from inner
    except RuntimeError as outer:
        assert "the disk is full" in disk_full(outer)
    assert "the disk is full" in disk_full(wrapped)
    assert disk_full(ValueError("something else")) is None


def test_a_full_disk_behind_a_tracking_error_is_reported_as_a_full_disk(monkeypatch, capsys):
    """MLflow's SQLite store failing on a full disk reaches the CLI as a TrackingError."""
    import sqlite3

    from pipelines.cli import main as cli
    from pipelines.core.errors import TrackingError

    def store_full():
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise TrackingError("MLflow at sqlite:///x/mlflow.db failed while logging metrics") from None

    assert cli._guarded(store_full) == 1
    assert "the disk is full" in capsys.readouterr().err
