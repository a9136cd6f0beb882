"""Unit: every intake `StreamingOptions.intake` admits is built by `open_intake` and has the
whole `Intake` interface (fake subscriber: nothing is started, no sockets)."""

from __future__ import annotations

import threading
import typing

import pytest

from pulse_local.streaming.intake import Intake, open_intake
from pulse_local.streaming.options import StreamingOptions

INTAKES = typing.get_args(StreamingOptions.model_fields["intake"].annotation)
MEMBERS = ("start", "stop_pulling", "close", "settle", "is_open", "max_held")


@pytest.mark.parametrize("intake", INTAKES)
def test_open_intake_builds_each_declared_intake(intake: str) -> None:
    built: Intake = open_intake(StreamingOptions(intake=intake), object(), "projects/p/subscriptions/s",
                                lambda messages: None, on_error=lambda text: None,
                                on_open=lambda at: None, stopped=threading.Event())
    missing = [name for name in MEMBERS if not hasattr(built, name)]
    assert not missing, f"intake {intake!r} ({type(built).__name__}) lacks {missing}"
    assert built.is_open() is False and built.is_open(ever=True) is False  # not started


def test_the_intakes_are_pull_and_streaming() -> None:
    assert set(INTAKES) == {"pull", "streaming"}
    assert StreamingOptions().intake == "pull"
