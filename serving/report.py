"""The CS managers' report: one self-contained HTML page (plots embedded, inline CSS and JS, no network) on who is
at risk, how much MRR, why in words, what to do, what changed since the previous scoring and how good the model is;
plus the at-risk list as Markdown and CSV for tools that import files.

Everything here takes frames and facts as arguments; the report stage gathers them (pipelines/report_run.py).
"""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from serving.config import DRIVER_GROUPS, ReportConfig
from serving.explain import RAISES, Benchmarks, calibrated_probability, describe_driver, feature_label
from serving.playbooks import driver_group
from training.calibrate import Calibrator

if TYPE_CHECKING:
    import jinja2
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ATTRIBUTES = ("name", "segment", "csm_owner")
AT_RISK_COLUMNS = ["account_id", "account", "segment", "csm_owner", "mrr", "churn_probability", "risk_tier",
                   "probability_change", "expected_mrr_loss", "top_reasons", "recommended_action", "owner_role"]
METRICS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier", "top_decile_lift": "Lift top 10%",
           "recall_at_capacity": "Churners reached", "mrr_captured_at_capacity": "Churned MRR reached"}
CONTENDERS = {"lightgbm": "this model", "health_score": "rule-based health score",
              "logistic_regression": "logistic regression"}
BREAKDOWN_TITLES = {"segment": "Segment", "plan": "Plan", "csm_owner": "CSM owner", "industry": "Industry",
                    "region": "Region"}
DPI = 110
GROUP_COLOURS = dict(zip(DRIVER_GROUPS, ("#3b82c4", "#8e6bbf", "#d9822b", "#2f9e77", "#c2415d"), strict=True))


@dataclass
class ModelFacts:
    """What the model-quality panel says about the model version that wrote the scores."""

    name: str
    version: str
    run_id: str | None = None
    trained_at: str | None = None
    window: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration_png: bytes | None = None
    calibration_method: str | None = None
    data_end: str | None = None
    capacity: int | None = None


@dataclass
class Portfolio:
    """Exact explanations of the scored accounts: TreeSHAP contributions (features + bias, log-odds) and feature
    values, both indexed by account_id, and the calibrator turning log-odds into the published probability."""

    contributions: pd.DataFrame
    values: pd.DataFrame
    calibrator: Calibrator


@dataclass
class ReportInputs:
    """What the scorer wrote for the as-of (and the previous one), account attributes and the model's facts."""

    as_of: date
    scores: pd.DataFrame
    drivers: pd.DataFrame
    attributes: pd.DataFrame
    specs: dict[str, FeatureSpec]
    tier_names: list[str]
    previous_as_of: date | None = None
    previous_scores: pd.DataFrame | None = None
    previous_drivers: pd.DataFrame | None = None
    portfolio: Portfolio | None = None
    model: ModelFacts | None = None
    benchmarks: Benchmarks | None = None
    horizon_days: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def top_tier(self) -> str:
        return self.tier_names[0]


# --- tables ---------------------------------------------------------------------------------------------------

def _accounts(inputs: ReportInputs) -> pd.DataFrame:
    """The scores of the as-of with the account attributes and the change since the previous scoring."""
    attributes = inputs.attributes.copy()
    attributes["account_id"] = attributes["account_id"].astype(str)
    for column in ATTRIBUTES:
        if column not in attributes.columns:
            attributes[column] = None
    frame = inputs.scores.merge(attributes[["account_id", *ATTRIBUTES]], on="account_id", how="left")
    previous = _previous(inputs)[["account_id", "churn_probability", "risk_tier"]]
    frame = frame.merge(previous.rename(columns={"churn_probability": "previous_probability",
                                                 "risk_tier": "previous_tier"}), on="account_id", how="left")
    frame["account"] = frame["name"].where(frame["name"].notna(), frame["account_id"])
    frame["expected_mrr_loss"] = frame["churn_probability"] * frame["mrr"]
    frame["probability_change"] = 100 * (frame["churn_probability"] - frame["previous_probability"])
    return frame.sort_values(["expected_mrr_loss", "account_id"], ascending=[False, True], kind="stable")


def _previous(inputs: ReportInputs) -> pd.DataFrame:
    if inputs.previous_scores is None:
        return pd.DataFrame(columns=["account_id", "churn_probability", "risk_tier", "mrr", "top_reasons"])
    return inputs.previous_scores


def build_at_risk(inputs: ReportInputs, config: ReportConfig) -> pd.DataFrame:
    """The at-risk list: accounts of the listed tiers (default: the top tier), by expected MRR loss, highest first.

    Columns: AT_RISK_COLUMNS; probability_change is in percentage points (NaN when not scored last time).
    """
    tiers = config.at_risk_tiers or [inputs.top_tier]
    frame = _accounts(inputs)
    listed = frame[frame["risk_tier"].isin(tiers)].head(config.max_accounts)[AT_RISK_COLUMNS].reset_index(drop=True)
    text = ["account", "segment", "csm_owner", "top_reasons", "recommended_action", "owner_role"]
    listed[text] = listed[text].astype(object).where(listed[text].notna(), None)
    return listed


def _mrr_at_risk(scores: pd.DataFrame) -> float:
    return float((scores["churn_probability"] * scores["mrr"]).sum()) if len(scores) else 0.0


def build_headline(inputs: ReportInputs) -> dict:
    """Accounts scored, accounts and MRR per tier, MRR at risk (Σ probability × MRR) and their previous values."""
    scores, previous = inputs.scores, _previous(inputs)
    now, before = _mrr_at_risk(scores), _mrr_at_risk(previous)
    tiers = [{"tier": t, "accounts": int((scores["risk_tier"] == t).sum()),
              "previous": int((previous["risk_tier"] == t).sum()) if inputs.previous_as_of else None,
              "mrr": float(scores.loc[scores["risk_tier"] == t, "mrr"].sum())} for t in inputs.tier_names]
    has_previous = inputs.previous_as_of is not None and len(previous) > 0
    return {"accounts": len(scores), "previous_accounts": len(previous) if has_previous else None,
            "tiers": tiers, "mrr": float(scores["mrr"].sum()), "mrr_at_risk": now,
            "previous_mrr_at_risk": before if has_previous else None,
            "mrr_at_risk_change": now - before if has_previous else None,
            "mrr_at_risk_change_share": (now - before) / before if has_previous and before else None}


def _risk_reasons(drivers: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """account → {feature: reason} of its risk drivers."""
    if drivers is None or drivers.empty:
        return {}
    risk = drivers[drivers["direction"] == RAISES].sort_values(["account_id", "rank"])
    out: dict[str, dict[str, str]] = {}
    for account, feature, reason in zip(risk["account_id"], risk["feature"], risk["reason"], strict=True):
        out.setdefault(account, {})[feature] = reason
    return out


def _protective(drivers: pd.DataFrame) -> dict[str, str]:
    helping = drivers[drivers["direction"] != RAISES].sort_values(["account_id", "rank"])
    return helping.groupby("account_id")["reason"].first().to_dict()


def build_tier_changes(inputs: ReportInputs) -> tuple[list[dict], list[dict]]:
    """Accounts that entered and left the top tier since the previous scoring, each with why in words."""
    if inputs.previous_as_of is None:
        return [], []
    top, frame = inputs.top_tier, _accounts(inputs)
    previous = _previous(inputs).set_index("account_id")
    now_reasons, then_reasons = _risk_reasons(inputs.drivers), _risk_reasons(inputs.previous_drivers)
    entered = []
    for row in frame[(frame["risk_tier"] == top) & (frame["previous_tier"] != top)].itertuples():
        new = [r for f, r in now_reasons.get(row.account_id, {}).items()
               if f not in then_reasons.get(row.account_id, {})]
        entered.append({"account": row.account, "account_id": row.account_id, "mrr": row.mrr,
                        "before": row.previous_probability, "now": row.churn_probability,
                        "was": row.previous_tier if isinstance(row.previous_tier, str) else "not scored",
                        "why": new or list(now_reasons.get(row.account_id, {}).values())})
    return entered, _left_top_tier(inputs, frame, previous, now_reasons, then_reasons)


def _left_top_tier(inputs: ReportInputs, frame: pd.DataFrame, previous: pd.DataFrame, now_reasons: dict,
                   then_reasons: dict) -> list[dict]:
    top = inputs.top_tier
    current = frame.set_index("account_id")
    helping = _protective(inputs.drivers)
    names = inputs.attributes.astype({"account_id": str}).set_index("account_id")
    left = []
    for account_id, row in previous[previous["risk_tier"] == top].iterrows():
        if account_id in current.index and current.at[account_id, "risk_tier"] == top:
            continue
        scored = account_id in current.index
        gone = [r for f, r in then_reasons.get(account_id, {}).items() if f not in now_reasons.get(account_id, {})]
        why = ([f"No longer a risk: {r}" for r in gone] + ([f"Now helping: {helping[account_id]}"]
                                                          if account_id in helping else [])) if scored else [
            "Not scored at this as-of: no active subscription (churned, ended or paused)"]
        name = names["name"].get(account_id) if "name" in names.columns else None
        left.append({"account": name if isinstance(name, str) else account_id, "account_id": account_id,
                     "mrr": row["mrr"], "before": row["churn_probability"],
                     "now": current.at[account_id, "churn_probability"] if scored else None,
                     "is": current.at[account_id, "risk_tier"] if scored else "not scored", "why": why})
    return sorted(left, key=lambda r: -r["mrr"] * r["before"])


def _breakdown_source(inputs: ReportInputs, column: str) -> pd.Series | None:
    for frame in (inputs.attributes.astype({"account_id": str}).set_index("account_id"),
                  inputs.portfolio.values if inputs.portfolio is not None else None):
        if frame is not None and column in frame.columns and frame[column].notna().any():
            return frame[column]
    return None


def build_breakdowns(inputs: ReportInputs, config: ReportConfig) -> dict[str, pd.DataFrame]:
    """Risk by each breakdown column the data has (segment, plan, CSM owner): accounts, top-tier accounts, MRR,
    MRR at risk and its share of the group's MRR, ordered by MRR at risk."""
    scores = inputs.scores.set_index("account_id")
    out = {}
    for column in config.breakdowns:
        source = _breakdown_source(inputs, column)
        if source is None:
            continue
        frame = scores.assign(group=source.reindex(scores.index).fillna("(unknown)").astype(str),
                              at_risk=scores["churn_probability"] * scores["mrr"],
                              top=scores["risk_tier"] == inputs.top_tier)
        table = frame.groupby("group").agg(accounts=("mrr", "size"), top_tier=("top", "sum"), mrr=("mrr", "sum"),
                                           mrr_at_risk=("at_risk", "sum"),
                                           mean_probability=("churn_probability", "mean"))
        table["share_at_risk"] = table["mrr_at_risk"] / table["mrr"].where(table["mrr"] > 0)
        out[column] = table.sort_values("mrr_at_risk", ascending=False).reset_index()
    return out


def build_reason_counts(inputs: ReportInputs, accounts: pd.Series, top: int = 10) -> list[dict]:
    """How often each signal is among the risk drivers of the listed accounts (most frequent first)."""
    risk = inputs.drivers[(inputs.drivers["direction"] == RAISES) & inputs.drivers["account_id"].isin(accounts)]
    counts = risk.groupby("feature").agg(accounts=("account_id", "nunique"), points=("probability_points", "mean"))
    counts = counts.sort_values(["accounts", "points"], ascending=False).head(top)
    return [{"label": feature_label(inputs.specs[f]) if f in inputs.specs else "Other signal",
             "group": driver_group(inputs.specs[f].group) if f in inputs.specs else "",
             "accounts": int(r.accounts), "points": r.points} for f, r in counts.iterrows()]


# --- plots ----------------------------------------------------------------------------------------------------

# matplotlib and jinja2 load only when a report is drawn: params parsing imports ReportConfig from here.
@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("serving", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float, height: float, left: float, right: float = 0.97) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    # Fixed margins (no automatic layout, which draws every figure twice); bottom keeps room for the x label.
    figure.subplots_adjust(left=left, right=right, top=1 - 0.35 / height, bottom=0.6 / height)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _top_features(portfolio: Portfolio, top: int) -> list[str]:
    features = [c for c in portfolio.contributions.columns if c != "bias"]
    importance = portfolio.contributions[features].abs().mean()
    return importance.sort_values(ascending=False, kind="stable").head(top).index.tolist()


def plot_importance(portfolio: Portfolio, specs: dict[str, FeatureSpec], top: int) -> bytes:
    """PNG: mean |SHAP| (log-odds) over the scored accounts of the `top` strongest signals, coloured by group."""
    from matplotlib import style
    from matplotlib.patches import Patch

    features = _top_features(portfolio, top)[::-1]
    importance = portfolio.contributions[features].abs().mean()
    colours = [GROUP_COLOURS.get(driver_group(specs[f].group), "0.5") if f in specs else "0.5" for f in features]
    with style.context("default"):
        figure, ax = _figure(6.4, 0.32 * len(features) + 1.4, 0.47)
        ax.barh([_label(specs, f) for f in features], importance.to_numpy(), color=colours)
        ax.legend(handles=[Patch(color=c, label=g) for g, c in GROUP_COLOURS.items()], fontsize="x-small",
                  loc="lower right", title="signal group", title_fontsize="x-small")
        ax.set_xlabel("Average effect on risk, either way (mean |SHAP|, log-odds)", fontsize="small")
        ax.set_title("Signals that move risk most across the portfolio", fontsize="medium")
        ax.tick_params(axis="y", labelsize="x-small")
        ax.grid(axis="x", alpha=0.3)
        return _png(figure)


def _label(specs: dict[str, FeatureSpec], feature: str) -> str:
    return feature_label(specs[feature]) if feature in specs else "Other signal"


def _swarm_offsets(x: np.ndarray, bins: int = 60, width: float = 0.38) -> np.ndarray:
    """Vertical offsets that spread points sharing an x bin symmetrically around their row (a beeswarm)."""
    if len(x) == 0:
        return x
    span = np.ptp(x) or 1.0
    bin_of = np.floor((x - x.min()) / span * (bins - 1)).astype(int)
    order = np.argsort(bin_of, kind="stable")
    position = pd.Series(bin_of[order]).groupby(bin_of[order]).cumcount().to_numpy()
    step = width / max(1, position.max())
    offsets = np.empty_like(x)
    offsets[order] = ((position + 1) // 2) * np.where(position % 2, 1, -1) * step
    return offsets


def _colour_values(values: pd.Series) -> np.ndarray:
    """Each account's value as its percentile among the accounts (0 low, 1 high); NaN for missing or text."""
    numbers = pd.to_numeric(values, errors="coerce") if pd.api.types.is_numeric_dtype(values) else None
    if numbers is None:
        return np.full(len(values), np.nan)
    return numbers.rank(pct=True).to_numpy()


def plot_beeswarm(portfolio: Portfolio, specs: dict[str, FeatureSpec], top: int) -> bytes:
    """PNG: one row per strong signal, one dot per account at its SHAP contribution, coloured by its value."""
    from matplotlib import colormaps, style

    features = _top_features(portfolio, top)
    cmap = colormaps["coolwarm"]
    with style.context("default"):
        figure, ax = _figure(7.2, 0.42 * len(features) + 1.5, 0.4, right=0.9)
        for row, feature in enumerate(features):
            x = portfolio.contributions[feature].to_numpy(dtype=float)
            shade = (_colour_values(portfolio.values[feature]) if feature in portfolio.values
                     else np.full(len(x), np.nan))
            colours = np.where(np.isnan(shade)[:, None], np.array([[0.6, 0.6, 0.6, 0.6]]),
                               cmap(np.nan_to_num(shade)))
            ax.scatter(x, row + _swarm_offsets(x), s=5, c=colours, linewidths=0, rasterized=True)
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set_yticks(range(len(features)), [_label(specs, f) for f in features], fontsize="x-small")
        ax.set_ylim(len(features) - 0.5, -0.5)
        ax.set_xlabel("Effect on the account's risk (SHAP, log-odds): right raises, left lowers", fontsize="small")
        ax.set_title("Every scored account, signal by signal", fontsize="medium")
        mappable = ax.scatter([], [], c=[], cmap=cmap, vmin=0, vmax=1)
        bar = figure.colorbar(mappable, ax=ax, fraction=0.03, pad=0.02, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"], fontsize="x-small")
        bar.set_label("account's value (grey: none)", fontsize="x-small")
        ax.grid(axis="x", alpha=0.3)
        return _png(figure)


# --- account pages ----------------------------------------------------------------------------------------------

def build_waterfall(inputs: ReportInputs, account_id: str, steps: int, segment=None) -> dict | None:
    """Steps from the model's average account to this account's probability, largest signals first.

    Each step adds one signal's log-odds contribution and shows the calibrated probability before and after it;
    the signals past `steps` are one step. The endpoints are exact; with calibration the size of a step depends
    on the order the signals are added in.
    """
    if inputs.portfolio is None or account_id not in inputs.portfolio.contributions.index:
        return None
    row = inputs.portfolio.contributions.loc[account_id]
    contributions = row.drop("bias")
    order = contributions.abs().sort_values(ascending=False, kind="stable").index
    shown, rest = list(order[:steps]), contributions[order[steps:]]
    deltas = [contributions[f] for f in shown] + ([rest.sum()] if len(rest) else [])
    path = calibrated_probability(row["bias"] + np.concatenate([[0.0], np.cumsum(deltas)]),
                                  inputs.portfolio.calibrator)
    values = inputs.portfolio.values.loc[account_id]
    labels = [describe_driver(inputs.specs[f], _value(values, f), inputs.benchmarks, segment)
              if f in inputs.specs else "Other signal" for f in shown] + (
        [f"{len(rest)} other signals together"] if len(rest) else [])
    scale = max(float(path.max()) * 1.15, 0.05)
    bars = [{"label": label, "start": path[i], "end": path[i + 1], "points": 100 * (path[i + 1] - path[i]),
             "left": 100 * min(path[i], path[i + 1]) / scale, "width": max(0.4, 100 * abs(path[i + 1] - path[i])
                                                                             / scale)}
            for i, label in enumerate(labels)]
    return {"base": path[0], "final": path[-1], "bars": bars, "base_width": 100 * path[0] / scale,
            "final_width": 100 * path[-1] / scale}


def _value(values: pd.Series, feature: str):
    value = values.get(feature)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_account_pages(inputs: ReportInputs, at_risk: pd.DataFrame, config: ReportConfig) -> list[dict]:
    """One expandable section per account of the at-risk list: its drivers in words and its waterfall."""
    drivers = inputs.drivers[inputs.drivers["account_id"].isin(at_risk["account_id"])].sort_values(
        ["account_id", "rank"])
    by_account = dict(iter(drivers.groupby("account_id")))
    attributes = inputs.attributes.astype({"account_id": str}).set_index("account_id")
    pages = []
    for row in at_risk.itertuples():
        segment = attributes[inputs.benchmarks.by].get(row.account_id) if (
            inputs.benchmarks and inputs.benchmarks.by in attributes.columns) else None
        listed = by_account.get(row.account_id, pd.DataFrame(columns=drivers.columns))
        pages.append({"row": row, "drivers": listed.to_dict(orient="records"),
                      "waterfall": build_waterfall(inputs, row.account_id, config.waterfall_steps, segment)})
    return pages


# --- rendering ----------------------------------------------------------------------------------------------------

def _money(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:,.0f}"


def _percent(value, digits: int = 0) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * value:.{digits}f}%"


def _points(value) -> str:
    return "new" if value is None or pd.isna(value) else f"{value:+.1f} pp"


def _text(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def _plots(inputs: ReportInputs, config: ReportConfig) -> dict[str, str]:
    if inputs.portfolio is None or inputs.portfolio.contributions.empty:
        return {}
    return {"importance": _b64(plot_importance(inputs.portfolio, inputs.specs, config.top_features)),
            "beeswarm": _b64(plot_beeswarm(inputs.portfolio, inputs.specs, config.top_features))}


def describe_quality(model: ModelFacts | None) -> list[str]:
    """The champion's validation metrics in sentences a manager can read (those the run logged)."""
    metrics = (model.metrics.get("lightgbm") or {}) if model else {}
    known = {k: v for k, v in metrics.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    sentences = []
    if "roc_auc" in known:
        sentences.append(f"On the validation period, a churner got a higher score than a staying account "
                         f"{known['roc_auc']:.0%} of the time (ROC-AUC {known['roc_auc']:.2f}; 0.5 is chance).")
    if "top_decile_lift" in known:
        sentences.append(f"The riskiest 10% of accounts churned {known['top_decile_lift']:.1f}× as often as the "
                         "average.")
    if {"recall_at_capacity", "mrr_captured_at_capacity"} <= set(known) and model.capacity:
        sentences.append(f"Working the {model.capacity} riskiest accounts of each as-of reached "
                         f"{known['recall_at_capacity']:.0%} of the churners and "
                         f"{known['mrr_captured_at_capacity']:.0%} of the churned MRR.")
    return sentences


def _breakdown_titles(breakdowns: dict[str, pd.DataFrame]) -> list[tuple[str, str, pd.DataFrame]]:
    """(column header, heading after "Risk by", table) per breakdown."""
    out = []
    for column, table in breakdowns.items():
        title = BREAKDOWN_TITLES.get(column, column.replace("_", " ").capitalize())
        out.append((title, title if title.isupper() or title.startswith("CSM") else title.lower(), table))
    return out


def render_manager_report(inputs: ReportInputs, config: ReportConfig,
                          at_risk: pd.DataFrame | None = None) -> str:
    """The managers' report as one HTML page that opens with no network."""
    at_risk = build_at_risk(inputs, config) if at_risk is None else at_risk
    entered, left = build_tier_changes(inputs)
    return _environment().get_template("churn_report.html").render(
        inputs=inputs, headline=build_headline(inputs), at_risk=at_risk,
        shown=[c for c in ("segment", "csm_owner") if at_risk[c].notna().any()],
        tiers=config.at_risk_tiers or [inputs.top_tier], entered=entered, left=left,
        breakdowns=_breakdown_titles(build_breakdowns(inputs, config)), plots=_plots(inputs, config),
        reasons=build_reason_counts(inputs, at_risk["account_id"]), pages=build_account_pages(inputs, at_risk, config),
        model=inputs.model, calibration=_b64(inputs.model.calibration_png) if inputs.model else None,
        quality=describe_quality(inputs.model), metric_names=METRICS, contenders=CONTENDERS,
        group_colours=GROUP_COLOURS, has_account_names="name" in inputs.attributes.columns,
        money=_money, percent=_percent, points=_points, text=_text)


def at_risk_csv(at_risk: pd.DataFrame) -> str:
    """The at-risk list as CSV (probability 0–1, change in percentage points, MRR as numbers)."""
    return at_risk.to_csv(index=False, float_format="%.6g")


def at_risk_markdown(at_risk: pd.DataFrame, as_of: date) -> str:
    """The at-risk list as a Markdown table, highest expected MRR loss first."""
    def cell(value) -> str:
        return _text(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"# Accounts at risk as of {as_of}", "",
             "| # | account | segment | CSM owner | MRR | churn probability | change | expected MRR loss | tier | "
             "top reasons | recommended action | owner |", "|" + " --- |" * 12]
    for i, r in enumerate(at_risk.itertuples(), start=1):
        lines.append(" | ".join(["", str(i), cell(r.account), cell(r.segment), cell(r.csm_owner), _money(r.mrr),
                                 _percent(r.churn_probability, 1), _points(r.probability_change),
                                 _money(r.expected_mrr_loss), cell(r.risk_tier), cell(r.top_reasons),
                                 cell(r.recommended_action), cell(r.owner_role), ""]).strip())
    return "\n".join(lines) + "\n"
