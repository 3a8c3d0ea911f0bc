"""Per-stage progress lines with counts and timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Progress:
    """Prints one line per finished stage: name, what it produced, seconds."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Time a stage; the caller puts a `detail` string into the yielded dict."""
        info: dict = {}
        start = time.perf_counter()
        if self.console.is_terminal:
            self.console.print(f"[dim]… {name}[/dim]", end="\r")
        yield info
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        self.console.print(f"[green]✓[/green] {name:<22} {info.get('detail', ''):<52} {elapsed:6.1f} s")

    def note(self, text: str) -> None:
        self.console.print(f"  [yellow]![/yellow] {text}")
