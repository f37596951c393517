"""paychan_runtime.processes.terminate on real child processes: SIGTERM first, SIGKILL when it is ignored."""

from __future__ import annotations

import signal
import subprocess
import sys

from paychan_runtime.processes import terminate

_WAIT_FOREVER = "import sys, time; print('ready', flush=True); time.sleep(600)"
_IGNORE_TERM = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                "time.sleep(600)")


def _started(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"  # its signal handlers are set
    return proc


def test_a_running_process_ends_on_sigterm() -> None:
    proc = _started(_WAIT_FOREVER)
    assert terminate(proc) == -signal.SIGTERM
    assert proc.poll() == -signal.SIGTERM


def test_a_process_ignoring_sigterm_is_killed_after_the_grace() -> None:
    proc = _started(_IGNORE_TERM)
    assert terminate(proc, grace=0.2) == -signal.SIGKILL


def test_an_ended_process_gets_no_signal_and_keeps_its_code() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert terminate(proc) == 3
