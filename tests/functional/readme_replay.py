"""Replays README.md's curl walk-through against a base URL (used by test_readme.py and test_nginx_tls.py)."""

from __future__ import annotations

import json
import logging
import re
import subprocess

from tests.support.services import PROJECT_ROOT

log = logging.getLogger("paychan.tests")


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


def replay_walkthrough(base_url: str, curl_options: str = "") -> list[dict[str, object]]:
    """Run the walk-through's lines against base_url (instead of http://127.0.0.1:8080), checking each
    answer against its `# -> ...` comment; returns the parsed JSON bodies."""
    steps = walkthrough()
    assert sum(1 for line, _ in steps if line.startswith("curl")) >= 9
    env_lines: list[str] = []
    bodies: list[dict[str, object]] = []
    checked = 0
    for line, expected in steps:
        line = line.replace("http://127.0.0.1:8080", base_url)
        if not line.startswith("curl"):
            env_lines.append(line)
            continue
        script = "\n".join([*env_lines, line.replace("curl -i", f"curl -s -i {curl_options}".rstrip(), 1)])
        out = subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
                             check=True).stdout
        head, _, body = out.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        log.info("%s -> %d", line[:90], status)
        bodies.append(json.loads(body))
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
    return bodies
