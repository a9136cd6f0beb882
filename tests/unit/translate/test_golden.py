"""Golden suite: BigQuery documentation examples, run through the translator on DuckDB.

Each case compares result types (mapped back to BigQuery types) and values. Cases that
cannot pass are marked xfail in their YAML with the reason, and the reason is listed in
docs/translation.md (checked by test_xfails_are_documented).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse_local.translate.golden import GoldenCase, load_cases, run_case

GOLDEN_DIR = Path(__file__).parent / "golden"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "translation.md"
CASES = load_cases(GOLDEN_DIR)


def _param(case: GoldenCase) -> object:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def test_suite_is_large_enough() -> None:
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_golden_case(case: GoldenCase) -> None:
    result = run_case(case)
    assert result.passed, result.detail


def test_xfails_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [c.id for c in CASES if c.xfail and c.id not in text]
    assert not missing, f"list these known differences in docs/translation.md: {missing}"


def test_pass_rate_target() -> None:
    passed = sum(1 for c in CASES if not c.xfail)
    assert passed / len(CASES) >= 0.95
