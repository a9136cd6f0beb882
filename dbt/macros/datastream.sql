{#- Helpers for the raw layer written by Google Datastream (append-only mode): every change
    of a source row is one row with a `datastream_metadata` struct
    (uuid, source_timestamp = epoch milliseconds, change_sequence_number, change_type in
    INSERT / UPDATE-INSERT / UPDATE-DELETE / DELETE, sort_keys). That mode has no is_deleted
    field: deletes are read from change_type. BigQuery SQL. -#}

{#- Order of changes of one source row, newest first. At equal source_timestamp and sequence
    number the new image of an update (UPDATE-INSERT) wins over its old image (UPDATE-DELETE). -#}
{% macro datastream_newest_first() -%}
    datastream_metadata.source_timestamp desc,
    datastream_metadata.change_sequence_number desc,
    case datastream_metadata.change_type when 'UPDATE-DELETE' then 0 else 1 end desc
{%- endmacro %}

{#- True for a change row that removes the source row (a delete or the old image of an update
    that moved the key). -#}
{% macro datastream_is_delete() -%}
    (datastream_metadata.change_type in ('DELETE', 'UPDATE-DELETE'))
{%- endmacro %}

{#- The current state of every source row: the newest change row per key, dropped when that
    change is a delete. Returns the source columns plus `_changed_at` (TIMESTAMP of the change
    at the source) and `_change_sequence` (the change's sequence number). -#}
{% macro datastream_current(relation, key_columns) -%}
    select * except (datastream_metadata, _is_delete)
    from (
        select
            *,
            timestamp_millis(datastream_metadata.source_timestamp) as _changed_at,
            datastream_metadata.change_sequence_number as _change_sequence,
            {{ datastream_is_delete() }} as _is_delete
        from {{ relation }}
        where true  -- BigQuery has required a WHERE/GROUP BY/HAVING next to QUALIFY
        qualify row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ datastream_newest_first() }}
        ) = 1
    )
    where not _is_delete
{%- endmacro %}
