{#- Score of an answer on a [scale_min, scale_max] scale, reverse keyed when `is_reversed`:
    a reverse-keyed item scores scale_min + scale_max - value (1 -> 5 and 5 -> 1 on a 1-5
    scale), so that for every scored item a higher score points the same way. NULL stays
    NULL (unanswered); a NULL `is_reversed` counts as not reversed. BigQuery SQL. -#}
{% macro reverse_key_score(value, scale_min, scale_max, is_reversed) -%}
    (case
        when {{ value }} is null then null
        when coalesce({{ is_reversed }}, false) then ({{ scale_min }} + {{ scale_max }}) - {{ value }}
        else {{ value }}
    end)
{%- endmacro %}
