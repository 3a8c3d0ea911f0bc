"""Judge the simulated CS team's experiments on a generated warehouse without writing it out: the product's own
labels (features.snapshots, on an in-memory DuckDB holding the subscriptions), arms from cs_actions on the monthly
grid, effects by serving.effects, and the true effects the simulation recorded (pipelines.synthetic.oracle)."""

from __future__ import annotations

import ibis
import pandas as pd

from features.config import LabelConfig
from features.sources import Sources
from pipelines.outcomes_run import SCORE_COLUMNS
from pipelines.synthetic.oracle import true_playbook_effects
from serving.effects import ALL, INTENT_TO_TREAT, estimate_effects, first_exposures
from serving.outcomes import arms_from_actions, join_outcomes, split_matured


def judge(frames: dict[str, pd.DataFrame], label: LabelConfig | None = None) -> pd.DataFrame:
    """Per playbook: the pooled intent-to-treat estimate (EFFECT_COLUMNS) with `true_effect` and `hazard_effect`
    (label: the default horizon and grace when None)."""
    from features.snapshots import build_labelled_population

    label = label or LabelConfig()
    con = ibis.duckdb.connect(threads=2)
    subs = con.create_table("subscriptions", frames["subscriptions"])
    start, end = frames["accounts"]["created_at"].min(), frames["events"]["event_at"].max()
    grid = [d.date() for d in pd.date_range(pd.Timestamp(start).to_period("M").to_timestamp() + pd.DateOffset(months=1),
                                            end, freq="MS")]
    recorded = arms_from_actions(frames["cs_actions"], grid)
    matured, _ = split_matured(recorded["as_of"], label, end.to_pydatetime())
    recorded = recorded[recorded["as_of"].isin(matured)]
    as_ofs = sorted(set(recorded["as_of"]))
    population = build_labelled_population(Sources(tables={"subscriptions": subs}), as_ofs, label,
                                           end.to_pydatetime())
    labels = population.execute().assign(mrr=0.0)
    outcomes, _ = join_outcomes(pd.DataFrame(columns=SCORE_COLUMNS), recorded.assign(arm_source="cs_actions"),
                                labels, frames["cs_actions"], label.horizon_days)
    effects = estimate_effects(outcomes)
    pooled = effects[(effects.analysis == INTENT_TO_TREAT) & (effects.tier == ALL) & (effects.window == ALL)]
    truth = true_playbook_effects(frames["sim_truth"], frames["sim_playbooks"], first_exposures(outcomes),
                                  label.horizon_days)
    return pooled.set_index("playbook").join(truth)
