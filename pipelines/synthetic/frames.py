"""Building the returned frames' string columns in Arrow, fast for millions of rows: ids such as `A00001`
(prefix plus a zero-padded running number) and labels looked up from integer codes. Each part of the company
builds its own output frame with these; this module holds no table of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def format_ids(prefix: str, n: int, width: int) -> pa.Array:
    """prefix + 1..n zero-padded to `width` digits (wider when n needs it)."""
    digits = max(width, len(str(max(n, 1))))
    numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, numbers, "")


def take(labels: pa.Array | tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """labels[codes] as a pandas str column, built in Arrow (fast for millions of rows)."""
    labels = labels if isinstance(labels, pa.Array) else pa.array(labels)
    return pd.Series(pc.take(labels, pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")
