"""README's curl walk-through, replayed line by line, and its Python client example, run as it is, against the
real three services (debug mode)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.readme_replay import replay_walkthrough
from tests.support.services import PROJECT_ROOT, Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


def test_readme_walkthrough_is_true(shared_services: Services) -> None:
    bodies = replay_walkthrough(shared_services.url)
    assert any(str(b.get("channel_uri", "")).startswith(shared_services.url + "/v2/channels/") for b in bodies)


def test_curl_available() -> None:
    assert shutil.which("curl"), "the README walk-through needs curl"


def python_example() -> str:
    """The Python block of README's "Python client library" section."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Python client library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return str(blocks[0])


def test_readme_python_example_is_true(shared_services: Services, tmp_path: Path) -> None:
    """Runs after the walk-through on the same stack: it uses its own random key."""
    code = python_example().replace("http://127.0.0.1:8080", shared_services.url)
    work = tmp_path / "client"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    log.info("README Python example printed:\n%s", out.stdout)
    lines = out.stdout.splitlines()
    assert lines[0] == "received 1000 left " + str(12_345_678_900_000 - 100_000 - 1000)
    txid = lines[1].removeprefix("settlement ")
    assert re.fullmatch(r"[0-9a-f]{64}", txid), lines
    state = json.loads((work / "channel.json").read_text())
    assert state["status"] == "closed" and state["settlement_txid"] == txid
    assert (work / "channel.json").stat().st_mode & 0o077 == 0, "the state file holds the key: private"
