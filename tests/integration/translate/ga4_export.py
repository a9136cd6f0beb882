"""GA4-style BigQuery export shards (events_YYYYMMDD, events_intraday_YYYYMMDD) in a DuckDB file.

The column shapes are GA4's export schema, trimmed to what tests/fixtures/ga4_project reads:
``event_params ARRAY<STRUCT<key STRING, value STRUCT<string_value STRING, int_value INT64,
float_value FLOAT64, double_value FLOAT64>>>``, ``geo STRUCT<country, city>``, ``ecommerce
STRUCT<transaction_id, purchase_revenue>``. The events are invented for the tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

DATASET = "analytics_123456"

SHARD_DDL = """
CREATE OR REPLACE TABLE {dataset}.{table} (
    event_date VARCHAR,
    event_timestamp BIGINT,
    event_name VARCHAR,
    event_params STRUCT(key VARCHAR, value STRUCT(string_value VARCHAR, int_value BIGINT,
                                                  float_value DOUBLE, double_value DOUBLE))[],
    user_pseudo_id VARCHAR,
    geo STRUCT(country VARCHAR, city VARCHAR),
    ecommerce STRUCT(transaction_id VARCHAR, purchase_revenue DOUBLE)
)"""


@dataclass(frozen=True)
class Event:
    """One exported event: day, time of day (HH:MM), name, user, country, page or revenue."""

    day: int  # of January 2024
    time: str
    name: str
    user: str
    country: str
    page: str | None = None
    revenue: float | None = None
    session: int = 1

    @property
    def micros(self) -> int:
        hour, minute = map(int, self.time.split(":"))
        moment = dt.datetime(2024, 1, self.day, hour, minute, tzinfo=dt.UTC)
        return int(moment.timestamp()) * 1_000_000

    @property
    def date(self) -> dt.date:
        return dt.date(2024, 1, self.day)

    def params(self) -> list[dict[str, object]]:
        def param(key: str, string: str | None = None, integer: int | None = None,
                  double: float | None = None) -> dict[str, object]:
            return {"key": key, "value": {"string_value": string, "int_value": integer,
                                          "float_value": None, "double_value": double}}

        out = [param("ga_session_id", integer=self.session)]
        if self.page is not None:
            out += [param("page_location", string=self.page), param("engagement_time_msec", integer=100)]
        if self.revenue is not None:
            out += [param("currency", string="EUR"), param("value", double=self.revenue)]
        return out


#: First load: three daily shards and an intraday shard (never read by the models).
FIRST = {
    "events_20240101": [
        Event(1, "10:00", "page_view", "u1", "FR", page="/home"),
        Event(1, "10:05", "page_view", "u1", "FR", page="/pricing"),
        Event(1, "11:00", "page_view", "u2", "DE", page="/home"),
        Event(1, "11:30", "purchase", "u2", "DE", revenue=20.0),
    ],
    "events_20240102": [
        Event(2, "09:00", "page_view", "u1", "FR", page="/home"),
        Event(2, "12:00", "page_view", "u3", "US", page="/docs"),
        Event(2, "12:10", "purchase", "u3", "US", revenue=15.5),
    ],
    "events_20240103": [
        Event(3, "08:00", "page_view", "u2", "DE", page="/pricing"),
        Event(3, "14:00", "page_view", "u4", "GB", page="/home"),
        Event(3, "14:20", "purchase", "u4", "GB", revenue=99.99),
    ],
    "events_intraday_20240104": [
        Event(4, "06:00", "page_view", "u9", "ES", page="/home"),
    ],
}

#: Second load: day 3 exported again with a late event, days 4 and 5, a new intraday shard,
#: and day 1 exported again with an extra event (older than what incremental runs re-read).
SECOND = {
    "events_20240101": [*FIRST["events_20240101"],
                        Event(1, "23:00", "page_view", "u6", "NL", page="/home")],
    "events_20240103": [*FIRST["events_20240103"],
                        Event(3, "18:00", "page_view", "u1", "FR", page="/docs", session=2)],
    "events_20240104": [
        Event(4, "09:15", "purchase", "u1", "FR", revenue=5.0, session=3),
        Event(4, "10:00", "page_view", "u5", "IT", page="/home"),
    ],
    "events_20240105": [
        Event(5, "07:00", "page_view", "u2", "CH", page="/home", session=4),
    ],
    "events_intraday_20240105": [
        Event(5, "08:00", "page_view", "u9", "ES", page="/home"),
    ],
}


def load_shards(path: str, shards: dict[str, list[Event]]) -> None:
    """(Re)create each shard table in `DATASET` with its events, as GA4's daily export does."""
    con = duckdb.connect(path)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {DATASET}")
        for table, events in shards.items():
            con.execute(SHARD_DDL.format(dataset=DATASET, table=table))
            for e in events:
                con.execute(
                    f"INSERT INTO {DATASET}.{table} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [e.date.strftime("%Y%m%d"), e.micros, e.name, e.params(), e.user,
                     {"country": e.country, "city": None},
                     {"transaction_id": f"t-{e.user}-{e.day}" if e.revenue is not None else None,
                      "purchase_revenue": e.revenue}],
                )
    finally:
        con.close()
