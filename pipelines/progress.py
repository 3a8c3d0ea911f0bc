"""Per-stage progress lines with counts and timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text


class Progress:
    """Prints one line per finished stage: name, what it produced, seconds."""

    def __init__(self, console: Console | None = None) -> None:
        # markup=False: names and values from the data (`[/red]`, `[bold]`) print as they are.
        self.console = console or Console(highlight=False, soft_wrap=True, markup=False)
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Time a stage; the caller puts a `detail` string into the yielded dict."""
        info: dict = {}
        start = time.perf_counter()
        if self.console.is_terminal:
            self.console.print(Text(f"… {name}", style="dim"), end="\r")
        yield info
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        self.console.print(Text.assemble(("✓", "green"), f" {name:<22} {info.get('detail', ''):<52} {elapsed:6.1f} s"))

    def note(self, text: str) -> None:
        self.console.print(Text.assemble("  ", ("!", "yellow"), f" {text}"))
