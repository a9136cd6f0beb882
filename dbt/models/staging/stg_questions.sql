-- Current state of every question, with its scale and reverse keying.
with current_rows as (
    {{ datastream_current(source('raw', 'questions'), ['id']) }}
)

select
    cast(id as string) as question_id,
    cast(tenant_id as string) as tenant_id,
    cast(assessment_id as string) as assessment_id,
    cast(ref as string) as question_ref,
    cast(title as string) as title,
    cast(question_type as string) as question_type,
    cast(position as int64) as position,
    coalesce(cast(required as bool), true) as is_required,
    cast(scale_min as int64) as scale_min,
    cast(scale_max as int64) as scale_max,
    coalesce(cast(reverse_keyed as bool), false) as is_reverse_keyed,
    coalesce(cast(weight as numeric), 1) as weight,
    scale_min is not null and scale_max is not null as is_scored,
    cast(created_at as timestamp) as created_at,
    _changed_at
from current_rows
