"""Run the atheris harnesses: `python -m tests.fuzz.run [TARGET ...] --seconds N [--work DIR] [--out FILE]`.

Each target runs in its own process for N seconds on its seed corpus (plus what earlier runs in the same
--work folder found); crashes are written to WORK/TARGET/ (`crash-*`). Prints, and writes with --out, one
JSON record per target: executions, coverage (libFuzzer `cov`/`ft`), corpus size, crashes."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("wire_v1", "wire_v2", "wire_v23", "der", "tx", "state", "config", "chanstore", "chanstore_binary",
           "signer")
_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_STAT = re.compile(r"stat::number_of_executed_units: (\d+)")
_CRASH = re.compile(r"Test unit written to (\S+)")


def run_target(target: str, seconds: float, work: Path) -> dict[str, Any]:
    """Fuzz one target for `seconds`; its figures (and the crash files it wrote, if any)."""
    folder = work / target
    corpus = folder / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    module = f"tests.fuzz.fuzz_{target}"
    cmd = [sys.executable, "-m", module, "--seed-corpus", str(corpus), f"-max_total_time={max(int(seconds), 1)}",
           "-print_final_stats=1", "-timeout=20", "-rss_limit_mb=2048", f"-artifact_prefix={folder}/", str(corpus)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 300)
    out = proc.stdout + proc.stderr
    (folder / "last-run.log").write_text(out)
    done = _DONE.findall(out)
    stat = _STAT.findall(out)
    execs = int(stat[-1]) if stat else int(done[-1][0]) if done else 0
    cov, ft, corp = (int(x) for x in done[-1][1:]) if done else (0, 0, 0)
    return {"target": target, "seconds": seconds, "returncode": proc.returncode, "executions": execs,
            "cov": cov, "ft": ft, "corpus": corp, "crashes": _CRASH.findall(out),
            "tail": "" if proc.returncode == 0 else out[-3000:]}


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 1 if any target crashed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all of {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=float, default=600.0, help="per target (default 600: the long run)")
    parser.add_argument("--work", type=Path, default=None, help="corpus and crash folder (kept between runs)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    work = args.work or Path(tempfile.mkdtemp(prefix="paychan-fuzz-"))
    results = []
    for target in args.targets or TARGETS:
        result = run_target(target, args.seconds, work)
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "tail"}), flush=True)
        if result["tail"]:
            print(result["tail"], file=sys.stderr)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["returncode"] == 0 and not r["crashes"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
