"""The `bench:` settings: sizes of the scaled synthetic warehouses, the scoring population, paths and targets.

Kept apart from `pipelines/bench.py` (and free of heavy imports) so `pipelines/config.py` can hold it in Params.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BenchConfig(BaseModel):
    """What `churn bench` generates, measures and compares against its targets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # About 2,400 events per account over 15 months (measured: 167 events per account-month at 2,000 accounts,
    # 152 at 4,000), so 22,000 accounts give about 53 M events.
    accounts: int = Field(default=22_000, ge=20)  # accounts in the main warehouse
    months: int = Field(default=15, ge=6)  # history: 12 monthly as-ofs after the 90-day lookback, 8 of them labelled
    seed: int = 7  # generator seed; each chunk's seed derives from it
    start: date = date(2024, 1, 1)  # first day of the simulated history
    as_of_dates: int = Field(default=12, ge=1)  # the newest N monthly as-of dates of the grid are built
    scale_accounts: list[int] = Field(default_factory=lambda: [2_100, 8_400])  # smaller warehouses (~5 M, ~19 M events)
    chunk_accounts: int = Field(default=4_000, ge=20)  # accounts per generator call (bounds its memory)
    scoring_accounts: int = Field(default=100_000, ge=1)  # accounts scored with drivers and written back
    cache_dir: Path = Path("data/bench")  # cached warehouses and the run's work files
    output: Path = Path("reports/bench.json")
    pandas_memory_limit_gb: float = Field(default=16.0, gt=0)  # the pandas run is killed past this resident memory
    target_speedup: float = Field(default=10.0, gt=0)  # DuckDB feature build at least this many times faster
    target_feature_rss_gb: float = Field(default=4.0, gt=0)  # DuckDB feature build peak RSS below this
    target_scoring_seconds: float = Field(default=60.0, gt=0)  # score + drivers + write-back under this
    target_events: int = Field(default=50_000_000, ge=1)  # the scale the feature targets are set at

    @field_validator("scale_accounts")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(n < 20 for n in value):
            raise ValueError("scale points need at least 20 accounts each")
        return sorted(set(value))

    @property
    def scale_points(self) -> list[int]:
        """Account counts of every warehouse measured, smallest first; the last is the main one."""
        return sorted({n for n in self.scale_accounts if n < self.accounts} | {self.accounts})
