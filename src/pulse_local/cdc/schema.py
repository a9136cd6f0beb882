"""Source table schemas as the CDC service sees them (from Relation messages or the catalog),
and the catalog queries that complete them (primary keys, custom types, the publication)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse_local.cdc.errors import SchemaError
from pulse_local.cdc.pgoutput import Relation
from pulse_local.cdc.typemap import ColumnType, CustomType, map_type


@dataclass(frozen=True)
class ColumnSpec:
    """One published column."""

    name: str
    type_oid: int
    typmod: int
    type: ColumnType

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type_oid": self.type_oid, "typmod": self.typmod,
                "pg_type": self.type.pg_type, "bigquery_type": self.type.bigquery_type,
                "duckdb_type": self.type.duckdb_type, "kind": self.type.kind,
                "element_kind": self.type.element_kind}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSpec:
        kind = ColumnType(data["pg_type"], data["bigquery_type"], data["duckdb_type"],
                          data["kind"], data.get("element_kind", ""))
        return cls(data["name"], data["type_oid"], data["typmod"], kind)

    @property
    def toastable(self) -> bool:
        """Variable-length values that PostgreSQL may keep out of line (TOAST): an UPDATE that
        does not touch them reports them as unchanged ('u')."""
        return self.type.kind in ("string", "json", "bytes", "array") or self.type_oid == 1700


@dataclass(frozen=True)
class TableSchema:
    """A published table: its columns and the key rows are merged on (empty: keyless)."""

    namespace: str
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    replica_identity: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def same_shape(self, other: TableSchema) -> bool:
        """True when both land identically (names, types and key)."""
        return (self.column_names == other.column_names and self.key == other.key
                and [c.type.duckdb_type for c in self.columns]
                == [c.type.duckdb_type for c in other.columns])

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "key": list(self.key),
                "replica_identity": self.replica_identity,
                "columns": [c.to_json() for c in self.columns]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableSchema:
        return cls(data["namespace"], data["name"],
                   tuple(ColumnSpec.from_json(c) for c in data["columns"]),
                   tuple(data["key"]), data["replica_identity"])


class Catalog:
    """Catalog look-ups on an open psycopg connection, cached per process."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._types: dict[int, CustomType] = {}

    def custom_type(self, oid: int) -> CustomType | None:
        """Describe a non-built-in type (enum, domain, array of those...)."""
        if oid < 16384 and oid not in self._types:
            return None
        if oid not in self._types:
            row = self.conn.execute(
                "select typname, typtype, typbasetype::int, typtypmod, typelem::int, typcategory "
                "from pg_type where oid = %s", (oid,)).fetchone()
            if row is None:
                return None
            name, typtype, base, base_mod, elem, category = row
            self._types[oid] = CustomType(name, typtype, base, base_mod,
                                          elem if category == "A" else 0)
        return self._types[oid]

    def column_type(self, oid: int, typmod: int) -> ColumnType:
        return map_type(oid, typmod, custom=self.custom_type(oid) if oid >= 16384 else None)

    def primary_key(self, namespace: str, name: str) -> tuple[str, ...]:
        rows = self.conn.execute(
            "select a.attname from pg_index i "
            "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) "
            "where i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass "
            "and i.indisprimary order by array_position(i.indkey::int2[], a.attnum)",
            (namespace, name)).fetchall()
        return tuple(r[0] for r in rows)

    def identity_index(self, namespace: str, name: str) -> tuple[str, ...]:
        rows = self.conn.execute(
            "select a.attname from pg_index i "
            "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) "
            "where i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass "
            "and i.indisreplident order by array_position(i.indkey::int2[], a.attnum)",
            (namespace, name)).fetchall()
        return tuple(r[0] for r in rows)

    def merge_key(self, namespace: str, name: str, identity: str,
                  flagged: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The columns rows are merged on: the replica identity key for DEFAULT (the primary
        key) and USING INDEX (what DELETEs carry); the primary key for FULL and NOTHING."""
        if identity in ("d", "i"):
            if flagged is not None:
                return flagged
            return (self.primary_key(namespace, name) if identity == "d"
                    else self.identity_index(namespace, name))
        return self.primary_key(namespace, name)

    def schema_from_relation(self, rel: Relation) -> TableSchema:
        """A `TableSchema` for a Relation message (types and key completed from the catalog)."""
        columns = tuple(ColumnSpec(c.name, c.type_oid, c.type_modifier,
                                   self.column_type(c.type_oid, c.type_modifier))
                        for c in rel.columns)
        key = self.merge_key(rel.namespace, rel.name, rel.replica_identity, rel.key_columns)
        return TableSchema(rel.namespace, rel.name, columns, key, rel.replica_identity)

    def published_tables(self, publication: str) -> list[tuple[str, str, list[str], str | None]]:
        """(schema, table, published columns, row filter) of each table of `publication`."""
        found = self.conn.execute("select 1 from pg_publication where pubname = %s",
                                  (publication,)).fetchone()
        if found is None:
            database = self.conn.info.dbname
            raise SchemaError(
                f"publication {publication!r} does not exist in database {database!r}: apply the "
                "source migrations (`pulse-local up` runs them) or create it "
                f"(`create publication {publication} for table ...`), or fix source.publication "
                "in emulators/datastream/stream.yaml"
            )
        rows = self.conn.execute(
            "select schemaname, tablename, attnames, rowfilter from pg_publication_tables "
            "where pubname = %s order by schemaname, tablename", (publication,)).fetchall()
        return [(r[0], r[1], list(r[2]), r[3]) for r in rows]

    def table_schema(self, namespace: str, name: str, columns: list[str]) -> TableSchema:
        """A `TableSchema` from the catalog (used by the backfill, before any Relation message)."""
        rows = self.conn.execute(
            "select a.attname, a.atttypid::int, a.atttypmod, c.relreplident "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass "
            "and a.attnum > 0 and not a.attisdropped order by a.attnum",
            (namespace, name)).fetchall()
        wanted = set(columns)
        specs = tuple(ColumnSpec(r[0], r[1], r[2], self.column_type(r[1], r[2]))
                      for r in rows if r[0] in wanted)
        identity = rows[0][3] if rows else "d"
        key = self.merge_key(namespace, name, identity)
        return TableSchema(namespace, name, specs, key, identity)
