"""Stopping a child process the way every supervisor here does (the run_everything supervisor, the test
services, the benchmark's stack): SIGTERM, so it shuts down cleanly, then SIGKILL after a grace period."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

__all__ = ["terminate"]


def terminate(proc: subprocess.Popen[Any], grace: float = 15.0) -> int:
    """SIGTERM `proc` if it still runs, SIGKILL it after `grace` seconds; wait for it and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
