"""The installed package's version, for every entry point's `--version`."""

from __future__ import annotations

from importlib import metadata

__all__ = ["version_string"]


def version_string(prog: str) -> str:
    """`<prog> <version of the paychan distribution>` (from the installed package's metadata)."""
    try:
        version = metadata.version("paychan")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "unknown (not installed)"
    return f"{prog} {version}"
