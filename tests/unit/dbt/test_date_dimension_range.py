"""Wiring: every `submitted_at` the processor accepts has a row in `dim_date`.

`fact_response.submitted_date_key` must find its day in `dim_date` (a `relationships` test
checks it); the processor accepts [SUBMITTED_AT_MIN, SUBMITTED_AT_MAX), so the calendar built
from the dbt vars `date_start` / `date_end` must cover that whole window."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import yaml

from pulse_local.ingest.models import SUBMITTED_AT_MAX, SUBMITTED_AT_MIN

DBT_PROJECT = Path(__file__).resolve().parents[3] / "dbt" / "dbt_project.yml"


def test_dim_date_covers_every_day_the_processor_accepts() -> None:
    variables = yaml.safe_load(DBT_PROJECT.read_text())["vars"]
    start = date.fromisoformat(variables["date_start"])
    end = date.fromisoformat(variables["date_end"])
    first = SUBMITTED_AT_MIN.date()
    last = (SUBMITTED_AT_MAX - timedelta(microseconds=1)).date()
    assert start <= first, f"dim_date starts {start}, the processor accepts {first}"
    assert end >= last, f"dim_date ends {end}, the processor accepts {last}"
