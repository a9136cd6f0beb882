"""Errors raised by the BigQuery -> DuckDB translator."""

from __future__ import annotations

from pulse_local.errors import PulseError


class UntranslatableSQL(PulseError):
    """BigQuery SQL that cannot be run on DuckDB with BigQuery's semantics.

    Attributes give the construct and its 1-based position in the *BigQuery* text
    so that callers (the dbt plugin, the CLI) can point at the user's own code.
    """

    def __init__(
        self,
        construct: str,
        reason: str,
        *,
        line: int | None = None,
        col: int | None = None,
        hint: str = "",
        source_name: str | None = None,
    ) -> None:
        self.construct = construct
        self.reason = reason
        self.line = line
        self.col = col
        self.hint = hint or (
            "Rewrite this part with a construct listed in docs/translation.md, "
            "or run the model against BigQuery (dbt --target bigquery)."
        )
        self.source_name = source_name
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source_name:
            where += f"{self.source_name}: "
        if self.line is not None:
            where += f"line {self.line}, column {self.col}: "
        if self.reason.startswith("BigQuery syntax error"):
            return f"{where}{self.reason} near {self.construct}. {self.hint}"
        return f"{where}cannot translate {self.construct} to DuckDB: {self.reason}. {self.hint}"

    def located(self, source_name: str, line_offset: int = 0) -> UntranslatableSQL:
        """Return a copy naming `source_name` and shifting the line by `line_offset`."""
        line = None if self.line is None else self.line + line_offset
        return UntranslatableSQL(
            self.construct, self.reason, line=line, col=self.col, hint=self.hint,
            source_name=source_name,
        )
