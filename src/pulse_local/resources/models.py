"""Pydantic models of the resource files (``emulators/*/resources.yaml``).

The models validate strictly: unknown keys, wrong types, out-of-range values (GCP's own limits)
and dangling references (a subscription to an undeclared topic) are all rejected, so a bad file
fails before any API call. They hold only declarations; nothing here imports a Google client.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pulse_local.config import Profile
from pulse_local.profiles import ALL_PROFILES

_DURATION = re.compile(r"^(?P<value>\d+)(?P<unit>s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """Parse ``"30s"``, ``"10m"``, ``"12h"`` or ``"7d"`` into a timedelta.

    Plain numbers are refused on purpose: ``600`` could mean seconds or minutes.
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not (match := _DURATION.match(value.strip())):
        raise ValueError(f"expected a duration such as '30s', '10m', '12h' or '7d', got {value!r}")
    return timedelta(seconds=int(match["value"]) * _UNIT_SECONDS[match["unit"]])


def format_duration(value: timedelta) -> str:
    """Inverse of `parse_duration`: the largest unit that divides the duration exactly."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_expiration(value: object) -> timedelta | None:
    """``"never"`` -> None (the subscription never expires), else `parse_duration`."""
    if value == "never":
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"expected 'never' or a duration such as '7d', got {value!r}") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: A subscription's inactivity TTL: a duration, or ``never`` (None).
Expiration = Annotated[timedelta | None, BeforeValidator(parse_expiration)]


class DeclarationError(ValueError):
    """A rule spanning several entries is broken; ``field`` locates it (``subscriptions[1].topic``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


#: Pub/Sub topic / subscription id rules (https://cloud.google.com/pubsub/docs/admin#resource_names).
def _not_goog(name: str) -> str:
    if name.lower().startswith("goog"):
        raise ValueError(f"Pub/Sub names must not start with 'goog', got {name!r}")
    return name


PubSubName = Annotated[
    str, Field(pattern=r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$"), AfterValidator(_not_goog)
]
#: BigQuery table reference: dataset.table or project.dataset.table.
BigQueryTable = Annotated[
    str, Field(pattern=r"^([a-z][a-z0-9\-]{4,28}[a-z0-9]\.)?[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")
]
#: Bigtable table id and column family id rules.
BigtableTableId = Annotated[str, Field(pattern=r"^[-_.a-zA-Z0-9]{1,50}$")]
BigtableFamilyId = Annotated[str, Field(pattern=r"^[_a-zA-Z0-9][-_.a-zA-Z0-9]{0,63}$")]


class _Strict(BaseModel):
    """Base: unknown keys are errors and values are never coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_range(name: str, value: timedelta, low: timedelta, high: timedelta) -> None:
    """Raise a ValueError naming GCP's limit when ``value`` is outside ``[low, high]``."""
    if not low <= value <= high:
        raise DeclarationError(
            name,
            f"{name} must be between {format_duration(low)} and {format_duration(high)} "
            f"(GCP limit), got {format_duration(value)}",
        )


def _profiles_are_unique(profiles: list[Profile]) -> None:
    if not profiles or len(set(profiles)) != len(profiles):
        raise DeclarationError(
            "profiles", f"profiles must list {' and/or '.join(map(repr, ALL_PROFILES))} once "
            f"each, got {profiles}"
        )


# Pub/Sub ---------------------------------------------------------------------------------------


class RetryPolicy(_Strict):
    """Backoff between redeliveries of a nacked or expired message."""

    minimum_backoff: Duration
    maximum_backoff: Duration

    @model_validator(mode="after")
    def _within_limits(self) -> RetryPolicy:
        _check_range("minimum_backoff", self.minimum_backoff, timedelta(0), timedelta(seconds=600))
        _check_range("maximum_backoff", self.maximum_backoff, timedelta(0), timedelta(seconds=600))
        if self.minimum_backoff > self.maximum_backoff:
            raise DeclarationError(
                "minimum_backoff", "minimum_backoff must not exceed maximum_backoff"
            )
        return self


class DeadLetterPolicy(_Strict):
    """Where messages go after ``max_delivery_attempts`` failed deliveries."""

    dead_letter_topic: PubSubName
    max_delivery_attempts: int = Field(ge=5, le=100)


class BigQueryConfig(_Strict):
    """Make the subscription write messages into a BigQuery table (GCP only)."""

    table: BigQueryTable
    write_metadata: bool = False

    def table_in(self, project: str) -> str:
        """The fully qualified ``project.dataset.table`` the API expects."""
        return self.table if self.table.count(".") == 2 else f"{project}.{self.table}"


class TopicSpec(_Strict):
    """A topic. ``message_retention`` unset means "not managed here"."""

    name: PubSubName
    message_retention: Duration | None = None
    profiles: list[Profile] = Field(default_factory=lambda: list(ALL_PROFILES))

    @model_validator(mode="after")
    def _valid(self) -> TopicSpec:
        _profiles_are_unique(self.profiles)
        if self.message_retention is not None:
            _check_range(
                "message_retention",
                self.message_retention,
                timedelta(minutes=10),
                timedelta(days=31),
            )
        return self


class SubscriptionSpec(_Strict):
    """A subscription; every setting has an explicit value so drift can be detected."""

    name: PubSubName
    topic: PubSubName
    ack_deadline_seconds: int = Field(10, ge=10, le=600)
    message_retention: Duration = timedelta(days=7)
    retain_acked_messages: bool = False
    enable_message_ordering: bool = False
    expiration_ttl: Expiration = None
    retry_policy: RetryPolicy | None = None
    dead_letter_policy: DeadLetterPolicy | None = None
    bigquery_config: BigQueryConfig | None = None
    profiles: list[Profile] = Field(default_factory=lambda: list(ALL_PROFILES))

    @model_validator(mode="after")
    def _valid(self) -> SubscriptionSpec:
        _profiles_are_unique(self.profiles)
        _check_range(
            "message_retention", self.message_retention, timedelta(minutes=10), timedelta(days=7)
        )
        if self.expiration_ttl is not None and (
            self.expiration_ttl < max(timedelta(days=1), self.message_retention)
        ):
            raise DeclarationError(
                "expiration_ttl",
                "expiration_ttl must be 'never' or at least 1d and at least message_retention",
            )
        if self.dead_letter_policy and self.dead_letter_policy.dead_letter_topic == self.topic:
            raise DeclarationError(
                "dead_letter_policy.dead_letter_topic",
                "dead_letter_topic must differ from the subscription's own topic",
            )
        return self


def _unique(section: str, kind: str, names: list[str]) -> None:
    """Raise `DeclarationError` at the second declaration of a name."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise DeclarationError(
                f"{section}[{index}].name", f"{kind} {name!r} is declared more than once"
            )
        seen.add(name)


class PubSubDeclarations(_Strict):
    """Content of ``emulators/pubsub/resources.yaml``."""

    topics: list[TopicSpec]
    subscriptions: list[SubscriptionSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> PubSubDeclarations:
        _unique("topics", "topic", [t.name for t in self.topics])
        _unique("subscriptions", "subscription", [s.name for s in self.subscriptions])
        topics = {t.name: t for t in self.topics}
        for index, sub in enumerate(self.subscriptions):
            wanted = {f"subscriptions[{index}].topic": sub.topic}
            if sub.dead_letter_policy:
                field = f"subscriptions[{index}].dead_letter_policy.dead_letter_topic"
                wanted[field] = sub.dead_letter_policy.dead_letter_topic
            for field, name in wanted.items():
                if name not in topics:
                    raise DeclarationError(
                        field,
                        f"subscription {sub.name!r} refers to topic {name!r}, which is not "
                        f"declared under topics: declare it or fix the name",
                    )
                missing = set(sub.profiles) - set(topics[name].profiles)
                if missing:
                    raise DeclarationError(
                        f"subscriptions[{index}].profiles",
                        f"subscription {sub.name!r} is applied on {sorted(missing)} but its "
                        f"topic {name!r} is not: align their profiles",
                    )
        return self

    def for_profile(self, profile: Profile) -> PubSubDeclarations:
        """The declarations whose ``profiles`` include ``profile``."""
        return PubSubDeclarations(
            topics=[t for t in self.topics if profile in t.profiles],
            subscriptions=[s for s in self.subscriptions if profile in s.profiles],
        )

    def excluded_by(self, profile: Profile) -> list[str]:
        """Names (``topic:x`` / ``subscription:y``) that ``profile`` leaves out."""
        return [f"topic:{t.name}" for t in self.topics if profile not in t.profiles] + [
            f"subscription:{s.name}" for s in self.subscriptions if profile not in s.profiles
        ]


# Bigtable --------------------------------------------------------------------------------------


class GcRuleSpec(_Strict):
    """Garbage collection of one column family."""

    max_versions: int | None = Field(None, ge=1)
    max_age: Duration | None = None
    combine: Literal["union", "intersection"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GcRuleSpec:
        given = [r for r in (self.max_versions, self.max_age) if r is not None]
        if not given:
            raise ValueError(
                "a column family needs max_versions and/or max_age, otherwise it grows forever"
            )
        if len(given) == 2 and self.combine is None:
            raise ValueError(
                "with both max_versions and max_age set `combine: union` (either limit deletes) "
                "or `combine: intersection` (both limits must be hit)"
            )
        if len(given) == 1 and self.combine is not None:
            raise ValueError("combine only makes sense with both max_versions and max_age")
        if self.max_age is not None and self.max_age < timedelta(milliseconds=1):
            raise DeclarationError("max_age", "max_age must be positive")
        return self


class TableSpec(_Strict):
    """A table and its column families."""

    name: BigtableTableId
    column_families: dict[BigtableFamilyId, GcRuleSpec] = Field(min_length=1)


class BigtableDeclarations(_Strict):
    """Content of ``emulators/bigtable/resources.yaml``."""

    tables: list[TableSpec]

    @model_validator(mode="after")
    def _unique_tables(self) -> BigtableDeclarations:
        _unique("tables", "table", [t.name for t in self.tables])
        return self
