"""arrays rules."""

from __future__ import annotations

from pulse_local.translate.rules import Rule

RULES: dict[type, tuple[Rule, ...]] = {}
