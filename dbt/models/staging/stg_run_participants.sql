-- Current invitations: who was invited to which run (the denominator of completion rates).
with current_rows as (
    {{ datastream_current(source('raw', 'run_participants'), ['run_id', 'user_id']) }}
)

select
    concat(cast(run_id as string), ':', cast(user_id as string)) as run_participant_id,
    cast(tenant_id as string) as tenant_id,
    cast(run_id as string) as run_id,
    cast(user_id as string) as user_id,
    cast(invited_at as timestamp) as invited_at,
    _changed_at
from current_rows
