"""The ingest bench's verdict per run (no services): closed-loop runs need 500 accepted/s; a
run at an offered rate counts when it sustained at least 500/s offered, all accepted."""

from __future__ import annotations

import pytest

from bench.ingest_bench import Figures


def _run(per_s: float, p95: float, offered: float | None, accepted: int = 100) -> Figures:
    return Figures(sent=100, accepted=accepted, per_s=per_s, p50_ms=10, p95_ms=p95, p99_ms=60,
                   send_delay_p95_ms=1, offered=offered)


@pytest.mark.parametrize(("figures", "met"), [
    (_run(520, 45, None), True),
    (_run(499, 45, None), False),       # closed loop: 500/s is the bar
    (_run(499, 45, 500), True),         # offered 500/s, sustained
    (_run(499, 55, 500), False),        # too slow at the tail
    (_run(480, 45, 500), False),        # fell behind the offered rate
    (_run(399, 30, 400), False),        # offered less than 500/s
    (_run(520, 45, None, accepted=99), False),  # one refused
])
def test_verdict(figures: Figures, met: bool) -> None:
    assert figures.meets_target is met
