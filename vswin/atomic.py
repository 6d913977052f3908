"""Publishing a finished temporary file under its final name, with the permissions a plain write gives."""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask has no getter and is process-wide)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, target: str | Path) -> None:
    """Rename `tmp` over `target` atomically, keeping `target`'s mode if it exists.

    Temporary files are created 0600; a config or weights file published that way
    could not be read by a server running as another user.
    """
    target = Path(target)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
    os.chmod(tmp, mode)
    os.replace(tmp, target)
