"""Private files: the services' umask, and directories holding channel states only their owner may read."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("paychan.files")

PRIVATE_UMASK = 0o077


def set_private_umask() -> None:
    """Files and directories the process creates are its owner's alone (0600 / 0700)."""
    os.umask(PRIVATE_UMASK)


def private_directory(path: Path) -> None:
    """Create path (0700) or tighten it: the directory 0700, the files directly inside it 0600."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tightened = []
    for item in (path, *path.iterdir()):
        st = item.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(item, stat.S_IMODE(st.st_mode) & want)
            tightened.append(item.name)
    if tightened:
        log.warning("tightened the modes of %s (%d entries were readable by group or others)", path, len(tightened))
