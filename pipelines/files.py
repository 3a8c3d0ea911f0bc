"""Files the stages write for people (reports, exports): a folder checked before the work, files replaced whole."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipelines.errors import StageError


def ensure_writable(folder: Path, key: str) -> Path:
    """Create the folder if needed and prove a file can be written there, before any work is done.

    Raises:
        StageError: naming the params key, when the folder cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise StageError(f"{key}: cannot write to {folder}: {exc.strerror or exc}") from None
    return folder


def write_files(files: dict[Path, str], key: str) -> None:
    """Write each text file whole (a temporary file, then a rename), so a reader never sees half a file.

    Text is written as given (no newline translation), UTF-8.

    Raises:
        StageError: naming the params key, when a file cannot be written.
    """
    for path, text in files.items():
        temporary = path.with_name(f".{path.name}.partial")
        try:
            with temporary.open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StageError(f"{key}: cannot write {path}: {exc.strerror or exc}") from None
