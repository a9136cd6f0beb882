-- Current state of every assessment run.
with current_rows as (
    {{ datastream_current(source('raw', 'assessment_runs'), ['id']) }}
)

select
    cast(id as string) as run_id,
    cast(tenant_id as string) as tenant_id,
    cast(assessment_id as string) as assessment_id,
    trim(cast(name as string)) as run_name,
    cast(opens_at as timestamp) as opens_at,
    cast(closes_at as timestamp) as closes_at,
    cast(created_at as timestamp) as created_at,
    _changed_at
from current_rows
