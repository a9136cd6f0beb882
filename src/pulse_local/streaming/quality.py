"""Data-quality checks run on every valid event; results land in the ``quality`` family.

A failed check does not reject the event (it is a fact that happened): it is stored with
``quality:status = flagged`` and the names of the failed checks, and counted in the
aggregates (``flagged``), so dashboards can show and filter it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pulse_local.events import ResponseEvent

#: Submitted more than this far in the future (relative to the publish time) is clock skew.
MAX_FUTURE_SKEW = timedelta(minutes=5)
#: Typeform was founded in 2012; anything older is a broken timestamp.
EARLIEST_PLAUSIBLE = datetime.fromisoformat("2012-01-01T00:00:00+00:00")
#: Tolerance when comparing the stored total with the recomputed weighted sum.
SCORE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class QualityResult:
    """The outcome of the checks of one event."""

    failures: dict[str, str]  #: check name -> why it failed
    checks: tuple[str, ...]  #: every check that ran

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return "ok" if self.ok else "flagged"


def check_scores_in_range(event: ResponseEvent) -> str | None:
    """Every score lies on its question's scale and the scale is not inverted."""
    for s in event.scores:
        if s.scale_min > s.scale_max:
            return f"question {s.ref}: scale {s.scale_min}..{s.scale_max} is inverted"
        for name, value in (("raw_score", s.raw_score), ("score", s.score)):
            if not math.isfinite(value) or not s.scale_min <= value <= s.scale_max:
                return f"question {s.ref}: {name} {value} outside {s.scale_min}..{s.scale_max}"
        if not math.isfinite(s.weight) or s.weight < 0:
            return f"question {s.ref}: weight {s.weight} is negative or not finite"
    return None


def check_totals(event: ResponseEvent) -> str | None:
    """``total_score``/``max_score`` agree with the scores (present iff there are scores)."""
    if not event.scores:
        if event.total_score is not None or event.max_score is not None:
            return "total_score/max_score set but the event has no scores"
        return None
    if event.total_score is None or event.max_score is None:
        return "the event has scores but no total_score/max_score"
    total = sum(s.score * s.weight for s in event.scores)
    maximum = sum(s.scale_max * s.weight for s in event.scores)
    if abs(total - event.total_score) > SCORE_TOLERANCE * max(1.0, abs(total)):
        return f"total_score {event.total_score} != weighted sum of scores {total}"
    if abs(maximum - event.max_score) > SCORE_TOLERANCE * max(1.0, abs(maximum)):
        return f"max_score {event.max_score} != weighted sum of scale maxima {maximum}"
    if not 0 <= event.total_score <= event.max_score + SCORE_TOLERANCE or event.max_score < 0:
        return f"total_score {event.total_score} outside 0..max_score {event.max_score}"
    return None


def check_required_fields(event: ResponseEvent) -> str | None:
    """Fields the serving layer needs: a user, a form, and answers on complete responses."""
    missing = []
    if event.user_id is None:
        missing.append("user_id")
    if not event.form_id.strip():
        missing.append("form_id")
    if not event.typeform_token.strip():
        missing.append("typeform_token")
    if event.is_complete and event.answer_count == 0:
        missing.append("answers (complete response with answer_count 0)")
    return f"missing {', '.join(missing)}" if missing else None


def check_timestamp(event: ResponseEvent, published_at: datetime) -> str | None:
    """``submitted_at`` is after 2012 and not in the future relative to the publish time."""
    if event.submitted_at < EARLIEST_PLAUSIBLE:
        return f"submitted_at {event.submitted_at.isoformat()} is before 2012"
    if event.submitted_at > published_at + MAX_FUTURE_SKEW:
        return (f"submitted_at {event.submitted_at.isoformat()} is after the publish time "
                f"{published_at.isoformat()} (+{MAX_FUTURE_SKEW})")
    return None


def run_checks(event: ResponseEvent, published_at: datetime) -> QualityResult:
    """Run every check on ``event``; ``published_at`` is the Pub/Sub publish time."""
    results = {
        "scores_in_range": check_scores_in_range(event),
        "totals_consistent": check_totals(event),
        "required_fields": check_required_fields(event),
        "timestamp_sane": check_timestamp(event, published_at),
    }
    return QualityResult(
        failures={name: why for name, why in results.items() if why is not None},
        checks=tuple(results),
    )
