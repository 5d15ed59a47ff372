"""One plain sentence per anomaly: what its top features measured, against their usual level.

Users read a verdict where they look: the Anomalies dashboard lists `anomalies.explanation`,
and the bot quotes it. A z-score says little to them; "volume 14x its 60-bar median (108)" says
what happened. The sentence is built from the bar's MEASURES (model/features.py), the very
numbers its features were computed from, in the order of the model's top_features; `evidence`
carries the same numbers as JSON for SQL users.

The first top feature is always said (it is what crossed the threshold); a second one only
when it is itself unusual (|z| >= MENTION_Z) in the direction its rule counts (model/ensemble.py)
and says something new: a price that ended the minute where it went repeats the return, and a
silence of minutes repeats the missing bars. Two clauses at most: the sentence is read in a
dashboard's table cell and a chat bubble.
"""
from __future__ import annotations

import json
import math
from typing import Mapping

from model.ensemble import RULES
from model.features import HISTORY

MENTION_Z = 3.0
MAX_CLAUSES = 2
BASELINE = f"{HISTORY}-bar median"


def number(x: float) -> str:
    """Two significant digits below 100 (no trailing zeros), whole numbers with thousands separators above."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    decimals = max(0, 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{min(decimals, 6)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def against(value: float, usual: float, unit: str = "") -> str:
    """How `value` compares with its usual level, in words: "14x its 60-bar median (108)"."""
    if usual > 0 and value >= 1.5 * usual:
        return f"{times(value / usual)} its {BASELINE} ({number(usual)}{unit})"
    if value > 0 and usual >= 1.5 * value:
        return f"1/{number(usual / value)} of its {BASELINE} ({number(usual)}{unit})"
    return f"its {BASELINE} is {number(usual)}{unit}"


def _price_move(m: Mapping) -> str:
    move, usual = m["ret_pct"], m["ret_usual_pct"]
    direction = "up" if move >= 0 else "down"
    return f"price {direction} {number(abs(move))}% in the minute, {times(abs(move) / usual)} its usual move ({number(usual)}%)"


def _excursion(m: Mapping) -> str:
    reach, usual = m["excursion_pct"], m["ret_usual_pct"]
    side = "above" if reach >= 0 else "below"
    return (f"price reached {number(abs(reach))}% {side} the previous close within the minute, "
            f"{times(abs(reach) / usual)} its usual move ({number(usual)}%)")


def _trades(m: Mapping) -> str:
    count, usual = m["trade_count"], m["trade_count_usual"]
    if count < usual:
        return f"{count:,.0f} trade{'s' if count != 1 else ''} in a minute that usually has {number(usual)}"
    return f"{count:,.0f} trades, {against(count, usual)}"


# feature -> the clause that says what it measured (`m`: the bar's MEASURES and features)
CLAUSES = {
    "ret_z": _price_move,
    "excursion_z": _excursion,
    "range_z": lambda m: f"high-low range {number(m['range_pct'])}%, {against(m['range_pct'], m['range_usual_pct'], '%')}",
    "realised_vol_z": lambda m: (f"5-bar volatility {number(m['realised_vol_pct'])}%, "
                                 f"{against(m['realised_vol_pct'], m['realised_vol_usual_pct'], '%')}"),
    "volume_z": lambda m: f"volume {number(m['volume'])}, {against(m['volume'], m['volume_usual'])}",
    "count_z": _trades,
    "gap_z": lambda m: (f"{number(m['silence_s'])} s without a trade before the bar, "
                        f"{against(m['silence_s'], m['silence_usual_s'], ' s')}"),
    "gap_minutes": lambda m: f"the first bar after {m['gap_minutes']:.0f} minutes without one",
}
assert set(CLAUSES) == set(RULES), "every feature needs a clause"

# The MEASURES behind each feature, for `evidence`: (its value, its usual level)
EVIDENCE = {"ret_z": ("ret_pct", "ret_usual_pct"), "excursion_z": ("excursion_pct", "ret_usual_pct"),
            "range_z": ("range_pct", "range_usual_pct"), "realised_vol_z": ("realised_vol_pct", "realised_vol_usual_pct"),
            "volume_z": ("volume", "volume_usual"), "count_z": ("trade_count", "trade_count_usual"),
            "gap_z": ("silence_s", "silence_usual_s"), "gap_minutes": ("gap_minutes", None)}


def _unusual(feature: str, z: float) -> bool:
    return (abs(z) if RULES[feature][0] == "both" else z) >= MENTION_Z


def _known(feature: str, m: Mapping) -> bool:
    value, usual = EVIDENCE[feature]
    return all(isinstance(m.get(c), (int, float)) and math.isfinite(m[c]) for c in (value, usual) if c)


def _repeats(feature: str, said: list[str], m: Mapping) -> bool:
    """Whether `feature` would say again what a feature already said does."""
    if {feature, *said} >= {"ret_z", "excursion_z"}:  # the close is where the price went
        return m["ret_pct"] * m["excursion_pct"] > 0 and abs(m["excursion_pct"]) <= 1.25 * abs(m["ret_pct"])
    return {feature, *said} >= {"gap_z", "gap_minutes"}


def explain(top_features: str, m: Mapping) -> tuple[str, str]:
    """(sentence, evidence JSON) for one bar: `top_features` as the model gave them (comma-separated,
    most first); `m` maps the bar's FEATURES and MEASURES to their values."""
    said, clauses, evidence = [], [], {}
    for i, feature in enumerate(f for f in top_features.split(",") if f in CLAUSES):
        if len(said) == MAX_CLAUSES or not _known(feature, m) or (
                i and (not _unusual(feature, m[feature]) or _repeats(feature, said, m))):
            continue
        said.append(feature)
        clauses.append(CLAUSES[feature](m))
        value, usual = EVIDENCE[feature]
        evidence[feature] = {"z": round(float(m[feature]), 2), "value": round(float(m[value]), 6),
                             **({"usual": round(float(m[usual]), 6)} if usual else {})}
    if not said:
        return f"unusual {top_features.split(',')[0]}, with no baseline to compare it with", "{}"
    return "; ".join(clauses), json.dumps(evidence, separators=(",", ":"))
