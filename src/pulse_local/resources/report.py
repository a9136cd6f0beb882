"""What an apply did, resource by resource."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: created: did not exist, now does. exists: already as declared. updated: existed with drifted
#: settings that were changed in place. drift: differs in a way the API cannot change in place
#: (the detail says what to do). planned: dry run, nothing was called.
Action = Literal["created", "exists", "updated", "drift", "planned"]


@dataclass(frozen=True)
class ResourceResult:
    """The outcome for one resource (``kind`` is topic, subscription, table or column_family)."""

    kind: str
    name: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        """One human-readable line, e.g. ``created  subscription response-events-bigtable``."""
        suffix = f"  ({self.detail})" if self.detail else ""
        return f"{self.action:<8} {self.kind} {self.name}{suffix}"


@dataclass
class ApplyReport:
    """Results of applying one resource file to one target (a project or a Bigtable instance).

    ``skipped`` lists the declarations the profile filter left out (``kind:name``).
    """

    service: Literal["pubsub", "bigtable", "gcp"]
    target: str
    results: list[ResourceResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, action: Action, detail: str = "") -> None:
        """Record the outcome for one resource."""
        self.results.append(ResourceResult(kind, name, action, detail))

    def names(self, action: Action, kind: str | None = None) -> list[str]:
        """Names of the resources that ended with ``action`` (optionally of one ``kind``)."""
        return [
            r.name for r in self.results if r.action == action and (kind is None or r.kind == kind)
        ]

    @property
    def changed(self) -> bool:
        """True when the apply created or updated anything."""
        return any(r.action in ("created", "updated") for r in self.results)

    @property
    def drifted(self) -> list[ResourceResult]:
        """Resources that differ from their declaration and were not fixed."""
        return [r for r in self.results if r.action == "drift"]

    def summary(self) -> str:
        """A multi-line text: a header then one line per resource."""
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.action] = counts.get(result.action, 0) + 1
        header = f"{self.service} {self.target}: " + (
            ", ".join(f"{n} {action}" for action, n in counts.items()) or "nothing declared"
        )
        lines = [header, *("  " + r.line() for r in self.results)]
        lines += [f"  skipped  {name}  (not in this profile)" for name in self.skipped]
        return "\n".join(lines)
