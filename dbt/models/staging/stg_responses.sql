-- Current state of every Typeform response (revisions are updates; deleted ones are gone).
with current_rows as (
    {{ datastream_current(source('raw', 'responses'), ['id']) }}
)

select
    cast(id as string) as response_id,
    cast(tenant_id as string) as tenant_id,
    cast(assessment_id as string) as assessment_id,
    cast(run_id as string) as run_id,
    cast(user_id as string) as user_id,
    cast(typeform_token as string) as typeform_token,
    cast(submitted_at as timestamp) as submitted_at,
    cast(landed_at as timestamp) as landed_at,
    cast(received_at as timestamp) as received_at,
    coalesce(cast(is_complete as bool), false) as is_complete,
    cast(answer_count as int64) as answer_count,
    cast(total_score as numeric) as source_total_score,
    cast(max_score as numeric) as source_max_score,
    cast(revision as int64) as revision,
    cast(updated_at as timestamp) as updated_at,
    _changed_at
from current_rows
