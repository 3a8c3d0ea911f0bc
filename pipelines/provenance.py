"""Where a run came from: the code's commit, recorded on MLflow runs and in the benchmark."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """The checkout's commit, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
