"""Disk full (issue 15): ChanStore's LevelDB on a small tmpfs that fills up while payments flow through
PayChanServer. It must fail-stop with one CRITICAL log line, acknowledge nothing it did not store, and start
cleanly, with every acknowledged payment, once space is freed."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chan_store.store import EXIT_FAIL_STOP
from paychan_common.state import Status
from tests.functional.test_crash_points import OPEN_PRICE, assert_one_channel_closed
from tests.support.channels import CLIENT_REFUND, TestChannel
from tests.support.regtest_stack import stored_state
from tests.support.services import Services, logged

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

FS_SIZE = "1m"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test (needs root and CAP_SYS_ADMIN, as CI has)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root with CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def fill(path: Path) -> int:
    """Write `path` until the filesystem refuses another byte; returns the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 16, 1 << 12, 1 << 8, 1):
            with contextlib.suppress(OSError):
                while True:
                    written += os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as err:
        (path.parent / "one-more").write_bytes(b"x" * 4096)
    assert err.value.errno == errno.ENOSPC
    return written


def test_chanstore_fail_stops_on_a_full_disk_and_restarts_once_space_is_freed(tmp_path: Path, small_fs: Path) -> None:
    svc = Services(tmp_path / "svc", store={"storage": {"path": str(small_fs / "chanstore")}})
    filler = small_fs / "filler"
    with logged(svc):
        svc.start()
        ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
        change = ch.funding_value - OPEN_PRICE
        assert httpx.post(svc.url + ch.seed_url, json=ch.v2_body(change), timeout=30).status_code == 201
        acked = [change]
        log.info("filled the filesystem with %d bytes; paying until a write fails", fill(filler))
        failed: int | None = None
        with httpx.Client(timeout=30) as c:
            for _ in range(2000):  # the log file's last page still takes a few records
                change -= 1
                r = c.put(svc.url + ch.seed_url, json=ch.v2_body(change))
                if r.status_code != 200:
                    assert r.status_code == 503, r.text
                    failed = change
                    break
                acked.append(change)
        assert failed is not None, "the full disk never refused a write"
        assert svc.store.proc is not None and svc.store.proc.wait(timeout=30) == EXIT_FAIL_STOP
        store_log = svc.store.logfile.read_text()
        critical = [line for line in store_log.splitlines() if "level=CRITICAL" in line]
        assert len(critical) == 1 and "fail-stop" in critical[0], critical
        assert "Traceback" not in store_log
        log.info("while it is down nothing is acknowledged")
        assert httpx.put(svc.url + ch.seed_url, json=ch.v2_body(failed - 1), timeout=30).status_code == 503
        log.info("space freed: ChanStore starts cleanly and holds every acknowledged payment")
        filler.unlink()
        svc.start_store()
        state = stored_state(svc, ch.op)
        assert state is not None and state.status is Status.OPEN
        assert state.change_value in (min(acked), failed)  # the failed write either never reached disk, or did
        assert len(acked) > 1, "no payment went through before the disk filled"
        r = httpx.put(svc.url + ch.seed_url, json=ch.v2_body(failed - 2), timeout=30)
        assert r.status_code == 200, r.text
        r = httpx.put(svc.url + ch.seed_url + "/close", json=ch.v2_body(failed - 2, CLIENT_REFUND), timeout=30)
        assert r.status_code == 200 and r.json()["channel_status"] == "closed", r.text
        svc.stop()
        assert_one_channel_closed(small_fs)
