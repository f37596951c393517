"""README's curl walk-through, replayed line by line against the real three services (debug mode)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess

import pytest

from tests.support.services import PROJECT_ROOT, Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


def walkthrough() -> list[tuple[str, str | None]]:
    """(shell line, expected '# -> ...' comment or None) for every curl/variable line of the walk-through."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Walk-through with curl", 1)[1].split("\n## ", 1)[0]
    lines: list[tuple[str, str | None]] = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("# -> ") and lines and lines[-1][1] is None:
                lines[-1] = (lines[-1][0], line[5:])
            elif re.match(r"(curl |[A-Z]+=)", line):
                lines.append((line, None))
    return lines


def test_readme_walkthrough_is_true(services: Services) -> None:
    steps = walkthrough()
    assert sum(1 for line, _ in steps if line.startswith("curl")) >= 9
    env_lines: list[str] = []
    checked = 0
    for line, expected in steps:
        line = line.replace("http://127.0.0.1:8080", services.url)
        if not line.startswith("curl"):
            env_lines.append(line)
            continue
        script = "\n".join([*env_lines, line.replace("curl -i", "curl -s -i", 1)])
        out = subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
                             check=True).stdout
        head, _, body = out.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        log.info("%s -> %d", line[:90], status)
        if expected is None:
            assert status == 200, body
            continue
        exp_status, _, exp_body = expected.partition(" ")
        assert status == int(exp_status), f"{line}\n{body}"
        checked += 1
        if exp_body.startswith("{") and "…" not in exp_body:
            assert json.loads(body) == json.loads(exp_body)
        for key, value in re.findall(r'"(\w+)":("[^"…]*"|\d+|null)', exp_body):
            assert json.loads(body)[key] == json.loads(value), (line, key)
    assert checked >= 7


def test_curl_available() -> None:
    assert shutil.which("curl"), "the README walk-through needs curl"
