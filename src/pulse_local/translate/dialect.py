"""The BigQuery dialect the translator parses with: sqlglot's, keeping what its parser drops.

sqlglot reads BigQuery's `JSON_OBJECT([keys], [values])` by zipping the two arrays, which
silently drops the extra keys or values where BigQuery raises ("The number of keys and
values must match"). This parser marks such a call (`JSON_OBJECT_SIZE_MISMATCH` in the
node's meta) so a rule can refuse it.

Its tokenizer reads BigQuery's type aliases as BigQuery defines them: `INT`, `INTEGER`,
`SMALLINT`, `TINYINT` and `BYTEINT` are all INT64 (sqlglot keeps them as 32-, 16- and 8-bit
types, which DuckDB honours: `CAST('9000000000' AS INTEGER)` failed), and `FLOAT` is
FLOAT64 (sqlglot's FLOAT is DuckDB's 32-bit REAL: `CAST(0.1 AS FLOAT) * 3` gave
0.30000001).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp, parser
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.parsers.bigquery import BigQueryParser
from sqlglot.tokens import TokenType

#: Meta key set on a JSON_OBJECT whose key and value arrays differ in length.
JSON_OBJECT_SIZE_MISMATCH = "pulse_json_object_size_mismatch"


class _PulseBigQueryParser(BigQueryParser):
    def _parse_json_object(self, agg: Any = False) -> Any:
        start, errors = self._index, len(self.errors)
        plain = parser.Parser._parse_json_object(self, agg)
        pair = plain.expressions[0] if plain.expressions else None
        mismatch = (
            isinstance(pair, exp.JSONKeyValue) and isinstance(pair.this, exp.Array)
            and isinstance(pair.expression, exp.Array)
            and len(pair.this.expressions) != len(pair.expression.expressions)
        )
        self._retreat(start)
        del self.errors[errors:]  # the second parse reports the same errors
        node = super()._parse_json_object(agg)
        if mismatch:
            node.meta[JSON_OBJECT_SIZE_MISMATCH] = True
        return node


#: BigQuery's names for INT64 and FLOAT64 that sqlglot reads as narrower types.
_BIGQUERY_TYPE_ALIASES = {
    "INT": TokenType.BIGINT, "INTEGER": TokenType.BIGINT, "SMALLINT": TokenType.BIGINT,
    "TINYINT": TokenType.BIGINT, "BYTEINT": TokenType.BIGINT, "FLOAT": TokenType.DOUBLE,
}


class _PulseBigQueryTokenizer(BigQuery.Tokenizer):
    KEYWORDS: ClassVar[dict[str, TokenType]] = {**BigQuery.Tokenizer.KEYWORDS, **_BIGQUERY_TYPE_ALIASES}


class PulseBigQuery(BigQuery):
    """sqlglot's BigQuery dialect with the tokenizer and parser above."""

    Tokenizer = _PulseBigQueryTokenizer

    Parser = _PulseBigQueryParser
