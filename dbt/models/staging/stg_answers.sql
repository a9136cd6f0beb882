-- Current state of every answer (answers of deleted responses are deleted by the cascade).
with current_rows as (
    {{ datastream_current(source('raw', 'answers'), ['id']) }}
)

select
    cast(id as int64) as answer_id,
    cast(tenant_id as string) as tenant_id,
    cast(response_id as string) as response_id,
    cast(question_id as string) as question_id,
    cast(answer_type as string) as answer_type,
    cast(value_text as string) as value_text,
    cast(value_number as numeric) as value_number,
    cast(value_bool as bool) as value_bool,
    cast(raw_score as numeric) as source_raw_score,
    cast(score as numeric) as source_score,
    _changed_at
from current_rows
