"""The champion rule: whether a newly exported version takes `champion` from the version holding it,
given the champion's score on the same test data and, where both answers per example are at hand,
the paired test of the two (pipelines.metrics.intervals)."""

from __future__ import annotations

from dataclasses import dataclass

# Two scores closer than this (relative, above 1) are equal: reports write floats with six decimals.
TIE_TOLERANCE = 1e-6


@dataclass
class Score:
    """The champion's metric on the candidate's test data, or None with why not; with the paired
    comparison of the candidate against it when both answers per example are at hand."""

    value: float | None
    how: str  # recorded | rescored | unscored (other test data, no scorer) | unloadable
    note: str = ""
    comparison: dict | None = None


# export.promote: when a version takes champion from the one holding it, given the paired test of
# the two on the same test examples (pipelines.metrics.intervals); without answers per example to
# pair, the scores alone decide (at least as good moves).
PROMOTE_RULES = {
    "not_worse": "a new version takes champion unless it is significantly worse",
    "better": "a new version takes champion when its score is at least the champion's, whatever the noise",
    "significantly_better": "a new version takes champion only when it is significantly better",
}


def _paired_verdict(me: int, champion: int, comparison: dict, promote: str, rescored: str) -> tuple[bool, str]:
    """The rule on the paired test. Two exports deciding at once must agree on who holds champion, so
    the older of the two applies the rule as the newer one would: it takes champion back only where
    the newer one could not have taken it."""
    from pipelines.metrics.intervals import describe

    verdict = comparison["verdict"]
    if me > champion:
        move = verdict != "worse" if promote == "not_worse" else verdict == "better"
    else:
        move = verdict == "better" if promote == "not_worse" else verdict != "worse"
    said = describe(comparison, f"version {me}", f"champion version {champion}")
    return move, f"{said}{rescored}; export.promote: {promote} ({PROMOTE_RULES[promote]})"


def _verdict(me: int, value: float, champion: int, score: Score, metric_name: str, unloadable: str,
             greater_is_better: bool = True, promote: str = "better") -> tuple[bool, str]:
    """Whether version ``me`` (scoring ``value``) takes champion from version ``champion`` (``score``),
    and why: by ``promote``'s rule on the paired comparison when there is one; else at least as good
    in the metric's direction moves it, and on a tie the newer version wins."""
    if score.how == "unloadable":
        promote = unloadable == "promote"
        return promote, (f"champion version {champion} could not be loaded to score it on this test data "
                         f"({score.note}); {'promoted this version' if promote else 'kept it'} "
                         f"(export.unloadable_champion: {unloadable})")
    if score.value is None:
        return False, "champion was scored on other test data and cannot be re-scored; kept"
    rescored = " (champion re-scored on this test data)" if score.how == "rescored" else ""
    if score.comparison is not None and promote != "better":
        return _paired_verdict(me, champion, score.comparison, promote, rescored)
    # On a tie the newer version wins, so two exports deciding at once agree on the winner. The reports
    # keep six decimals, a re-scored champion all of them: equal to that precision is a tie.
    tie = abs(value - score.value) <= TIE_TOLERANCE * max(1.0, abs(score.value))
    better = not tie and (value > score.value if greater_is_better else value < score.value)
    at_least, worse = (">=", "<") if greater_is_better else ("<=", ">")
    way = "" if greater_is_better else " (lower is better)"
    if better or (tie and me > champion):
        return True, f"{metric_name} {value:.4f} {at_least} champion's {score.value:.4f}{way}{rescored}"
    if tie:
        return False, f"{metric_name} {value:.4f} = champion's (newer version {champion}){rescored}"
    return False, f"{metric_name} {value:.4f} {worse} champion's {score.value:.4f}{way}{rescored}"
