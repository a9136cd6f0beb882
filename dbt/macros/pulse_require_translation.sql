{#- This project is written in BigQuery SQL. On DuckDB it only returns BigQuery's answers
    through the translation plugin; refuse to run without it (see docs/translation.md).
    `pulse-local dbt check` compiles without the plugin on purpose (it translates every node
    itself and runs nothing): it sets var pulse_translation_check. -#}
{% macro pulse_require_translation() %}
  {%- if target.type == 'duckdb' and not var('pulse_translation_check', false) -%}
    {%- set modules = [] -%}
    {%- for p in (target.plugins or []) -%}
      {%- do modules.append(p['module'] if p is mapping else p.module) -%}
    {%- endfor -%}
    {%- if 'pulse_local.translate.dbt_plugin' not in modules -%}
      {{ exceptions.raise_compiler_error(
          "The pulse dbt project is written in BigQuery SQL. On DuckDB it needs the translation "
          ~ "plugin: add 'plugins: [{module: pulse_local.translate.dbt_plugin}]' to the '"
          ~ target.name ~ "' output in dbt/profiles.yml (see docs/translation.md).") }}
    {%- endif -%}
  {%- endif -%}
  select 1
{% endmacro %}
