"""Run the BigQuery-style fixture dbt project on DuckDB through the translation plugin.

dbt runs in-process (dbtRunner). The project is copied to a temporary directory so that
target/, logs/ and the DuckDB file never land in the repository.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb")
from dbt.cli.main import dbtRunner, dbtRunnerResult

from pulse_local.translate import dbt_plugin

PROJECT = Path(__file__).resolve().parents[2] / "fixtures" / "bq_project"

pytestmark = pytest.mark.integration


class Project:
    """A private copy of the fixture project and its DuckDB file."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "bq_project"
        shutil.copytree(PROJECT, self.dir, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
        self.db = root / "bq_project.duckdb"

    def dbt(self, *args: str, target: str = "duckdb", **vars_: Any) -> dbtRunnerResult:
        cli = [
            *args, "--project-dir", str(self.dir), "--profiles-dir", str(self.dir),
            "--target", target, "--target-path", str(self.dir / "target"),
            "--log-path", str(self.dir / "logs"), "--no-partial-parse", "--quiet",
        ]
        if vars_:
            cli += ["--vars", repr(vars_).replace("'", '"').replace("True", "true").replace("False", "false")]
        return dbtRunner().invoke(cli)

    def query(self, sql: str) -> tuple[list[tuple], list[str]]:
        # dbt-duckdb keeps its connection open in this process: share it (same config).
        con = duckdb.connect(str(self.db))
        try:
            con.execute("SET TimeZone = 'UTC'")
            cur = con.execute(sql)
            return cur.fetchall(), [str(d[1]) for d in cur.description]
        finally:
            con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """`dbt build` twice: batch 1 creates everything, batch 2 takes the incremental path."""
    project = Project(tmp_path_factory.mktemp("bq_project"))
    mp = pytest.MonkeyPatch()
    mp.setenv("PULSE_BQ_PROJECT_DUCKDB", str(project.db))
    first = project.dbt("build", batch=1)
    assert first.success, first.exception
    project.first_incremental = project.query("SELECT order_id, status FROM orders_incremental ORDER BY 1")[0]
    second = project.dbt("build", batch=2)
    assert second.success, second.exception
    yield project
    mp.undo()


def test_incremental_second_run_merges_new_and_updated_rows(built: Project) -> None:
    assert built.first_incremental == [(1, "shipped"), (2, "pending"), (3, "pending"), (4, "shipped")]
    rows, types = built.query(
        "SELECT order_id, status, amount, loaded_in_batch, updated_month FROM orders_incremental ORDER BY 1"
    )
    assert rows == [
        (1, "shipped", Decimal("19.9"), 1, dt.date(2024, 2, 1)),
        (2, "pending", Decimal(5), 1, dt.date(2024, 2, 1)),
        (3, "shipped", Decimal("42.5"), 2, dt.date(2024, 3, 1)),
        (4, "shipped", Decimal(120), 1, dt.date(2024, 3, 1)),
        (5, "pending", Decimal("7.25"), 2, dt.date(2024, 3, 1)),
    ]
    assert types[2] == "DECIMAL(38,9)" and types[4] == "DATE"


def test_dates_are_bigquery_dates(built: Project) -> None:
    rows, types = built.query(
        "SELECT order_month, order_week_monday, order_week_sunday, order_date_plus_month, "
        "days_to_quarter_end, weeks_to_quarter_end, order_dow, order_week_number "
        "FROM order_dates WHERE order_id = 1"
    )
    assert types[:4] == ["DATE"] * 4
    assert rows == [(dt.date(2024, 2, 1), dt.date(2024, 2, 12), dt.date(2024, 2, 18),
                     dt.date(2024, 3, 18), 42, 6, 1, 7)]


def test_unnest_with_offset_counts_from_zero(built: Project) -> None:
    rows, _ = built.query("SELECT order_id, position, sku, qty FROM order_items ORDER BY 1, 2")
    assert rows[:2] == [(1, 0, "A", 2), (1, 1, "B", 1)]
    assert [r[1] for r in rows if r[0] == 5] == [0, 1, 2]


def test_structs_arrays_except_replace_safe_cast(built: Project) -> None:
    rows, _types = built.query(
        "SELECT customer_id, name, n_orders, n_shipped, total_amount, shipped_ratio, "
        "last_two_orders, all_amounts_known, order_ids, n_tags, amount_rank "
        "FROM customer_summary ORDER BY customer_id"
    )
    ada, grace, linus = rows
    assert ada[1] == "ADA" and ada[2:4] == (2, 1) and ada[5] == 0.5
    assert [o["order_id"] for o in ada[6]] == [2, 1]
    assert grace[4] == Decimal("42.5") and grace[9] == 0
    assert linus[10] == 1 and linus[8] == "4,5"
    assert "items" not in [d for d in built.query("SELECT * FROM customer_summary LIMIT 0")[1]]


def test_snapshot_ran(built: Project) -> None:
    rows, types = built.query("SELECT customer_id, tags, signup_month FROM customers_snapshot ORDER BY 1")
    assert rows[0] == (10, "vip;early", dt.date(2023, 12, 1)) and types[2] == "DATE"


def test_untranslatable_model_names_file_and_construct(built: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BQ_PROJECT_DUCKDB", str(built.db))
    result = built.dbt("run", "--select", "uses_unknown_function", include_broken=True)
    assert not result.success
    messages = " ".join(str(getattr(r, "message", "")) for r in (result.result or []))
    assert "models/broken/uses_unknown_function.sql" in messages
    assert "hll_count.init" in messages.lower() and "line 4" in messages


def test_missing_plugin_stops_the_run(built: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BQ_PROJECT_DUCKDB", str(built.db))
    result = built.dbt("build", target="duckdb_untranslated")
    assert not result.success
    assert "needs the translation plugin" in str(result.exception)


def test_disabled_hook_fails_loudly(built: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a dbt-core/dbt-duckdb upgrade where the compile hook no longer applies."""
    from dbt.compilation import Compiler

    dbt_plugin.install_compile_hook()
    monkeypatch.setattr(Compiler, "_compile_code", Compiler._compile_code.__wrapped__)
    monkeypatch.setattr(dbt_plugin, "install_compile_hook", lambda: None)
    monkeypatch.setenv("PULSE_BQ_PROJECT_DUCKDB", str(built.db))
    result = built.dbt("build")
    assert not result.success
    text = str(result.exception) + " ".join(str(getattr(r, "message", "")) for r in (result.result or []))
    assert "translation is NOT applied" in text and "dbt-duckdb" in text
