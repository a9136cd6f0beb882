"""The dbt plugin's self-check, without running dbt."""

from __future__ import annotations

import duckdb
import pytest

from pulse_local.translate import dbt_plugin


def test_self_check_passes_when_hook_installed() -> None:
    dbt_plugin.install_compile_hook()
    con = duckdb.connect()
    dbt_plugin.self_check(con)


def test_self_check_fails_loudly_without_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.compilation import Compiler

    dbt_plugin.install_compile_hook()
    monkeypatch.setattr(Compiler, "_compile_code", Compiler._compile_code.__wrapped__)
    with pytest.raises(dbt_plugin.TranslationHookError, match="dbt-duckdb"):
        dbt_plugin.self_check(duckdb.connect())


def test_translate_node_sql_marks_and_translates() -> None:
    class Node:
        compiled_code = "select date_trunc(date '2024-02-15', month) as m"
        language = "sql"

    node = Node()
    dbt_plugin.translate_node_sql(node)
    assert dbt_plugin.MARKER in node.compiled_code
    assert "CAST(DATE_TRUNC" in node.compiled_code
    before = node.compiled_code
    dbt_plugin.translate_node_sql(node)  # idempotent
    assert node.compiled_code == before
