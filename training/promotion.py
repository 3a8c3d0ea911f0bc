"""The champion/challenger gate: a new model becomes champion only when it beats the current one."""

from __future__ import annotations

from training.config import PromotionConfig

# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"brier", "log_loss", "ece"})


def decide_promotion(challenger: dict[str, float], champion: dict[str, float] | None,
                     config: PromotionConfig, force: bool = False,
                     champion_unavailable: str | None = None) -> dict:
    """Decide whether the challenger replaces the champion, judged on the same validation data.

    Args:
        challenger, champion: metrics of each model on the current validation rows (champion None: none yet).
        champion_unavailable: why the champion could not be evaluated on this data, if it could not.

    Returns:
        {"promoted": bool, "reason": str, "metric", "challenger", "champion", "gain"}.
    """
    metric = config.metric
    if metric not in challenger:
        raise ValueError(f"model.promotion.metric: {metric!r} is not a computed metric "
                         f"({', '.join(sorted(challenger))})")
    ours = challenger[metric]
    theirs = None if champion is None else champion[metric]
    decision = {"metric": metric, "challenger": ours, "champion": theirs, "gain": None}
    if force:
        return decision | {"promoted": True, "reason": "promotion forced by --force-promote"}
    if champion_unavailable:
        return decision | {"promoted": False, "reason": f"champion kept: {champion_unavailable}; "
                                                         "use --force-promote to replace it"}
    if theirs is None:
        return decision | {"promoted": True, "reason": "no champion yet"}
    gain = (theirs - ours) if metric in LOWER_IS_BETTER else (ours - theirs)
    decision["gain"] = gain
    if gain > config.min_gain:
        return decision | {"promoted": True,
                           "reason": f"{metric} {ours:.4f} beats champion {theirs:.4f} by {gain:+.4f}"}
    return decision | {"promoted": False, "reason": f"champion kept: {metric} {ours:.4f} vs champion "
                                                    f"{theirs:.4f} (gain {gain:+.4f} ≤ min_gain {config.min_gain})"}
