{#- Incremental strategy of the facts, per warehouse (dispatched):
    BigQuery: MERGE on the unique key (dbt-bigquery's `merge`).
    DuckDB:   `delete+insert` on the unique key - supported by every dbt-duckdb/DuckDB
              version pyproject.toml allows (dbt-duckdb's `merge` needs DuckDB >= 1.4). -#}
{% macro pulse_incremental_strategy() -%}
    {{ return(adapter.dispatch('pulse_incremental_strategy', 'pulse')()) }}
{%- endmacro %}

{% macro default__pulse_incremental_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}

{% macro bigquery__pulse_incremental_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}

{% macro duckdb__pulse_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{#- is_incremental() for this project's models. dbt's is_incremental() asks the warehouse
    whether the table exists; an offline compile for BigQuery (pulse_local.warehouse.
    check_gcp_offline sets var pulse_offline_compile) must not touch the network, so there
    it answers true and the incremental branch is compiled (and checked) instead. -#}
{% macro pulse_is_incremental() -%}
    {%- if var('pulse_offline_compile', false) -%}
        {{ return(true) }}
    {%- else -%}
        {{ return(is_incremental()) }}
    {%- endif -%}
{%- endmacro %}
