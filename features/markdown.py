"""The generated reference documents (docs/FEATURES.md, docs/KPIS.md): one Markdown table per group."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def grouped_tables(items: Sequence, groups: Sequence[str], titles: dict[str, str], header: Sequence[str],
                   cells: Callable[[object], Sequence[str]]) -> list[str]:
    """Markdown lines: for each group that has items (in `groups` order), a heading and a table of its items.

    Args:
        items: objects with a `group` attribute.
        header: the column names.
        cells: an item's cells, one per column (already formatted).
    """
    lines: list[str] = []
    for group in groups:
        members = [item for item in items if item.group == group]
        if not members:
            continue
        lines += [f"## {titles[group]}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(cells(item)) + " |" for item in members]
        lines.append("")
    return lines
