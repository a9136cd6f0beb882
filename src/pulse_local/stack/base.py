"""What every stack mode offers, and the records it returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

Health = Literal["healthy", "starting", "down", "unhealthy"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service as `status` shows it."""

    name: str
    address: str
    health: Health
    pid: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class StartReport:
    """What `up` did for each service and how long each took to become ready (seconds)."""

    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Per started service, seconds per stage: ``prepare`` (initdb...), ``ready`` (spawn to
    #: the first answered probe), ``hooks`` (declared resources, migrations, restores).
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    total_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.started or self.restarted)


class Stack(Protocol):
    """Capability: run the local services."""

    mode: str

    def up(self) -> StartReport:
        """Start what is not running, wait until every service answers a real client call."""
        ...

    def down(self) -> list[str]:
        """Stop every service; return the names stopped. Data stays."""
        ...

    def status(self) -> list[ServiceStatus]:
        """Probe every service."""
        ...

    def logs(self, service: str, lines: int) -> str:
        """The last `lines` lines of a service's log."""
        ...
