"""Putting a feature group's parts side by side: each part is one row per grid key (or per account), and the group
reads them as columns of the grid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis.expr.types as ir

KEYS = ("account_id", "as_of")


def left_join_all(base: ir.Table, parts: Iterable[ir.Table | None], keys: Sequence[str] = KEYS) -> ir.Table:
    """`base` with the other columns of each part (None is skipped) left-joined on the keys the part has.

    The joins form one flat chain followed by one select. Dropping each join's right-hand keys as it is made would
    nest every join in a subquery of the next one, and compiling the nested query takes seconds.

    Raises:
        ValueError: two parts (or a part and `base`) hold a column of the same name.
    """
    names, table = list(base.columns), base
    for i, part in enumerate(p for p in parts if p is not None):
        on = [k for k in keys if k in part.columns]
        extra = [c for c in part.columns if c not in on]
        clash = sorted(set(extra) & set(names))
        if clash:
            raise ValueError(f"left_join_all: column(s) {clash} in more than one part")
        part = part.rename({f"_{k}_{i}": k for k in on})
        table = table.left_join(part, [table[k] == part[f"_{k}_{i}"] for k in on])
        names += extra
    return table.select(*names)
