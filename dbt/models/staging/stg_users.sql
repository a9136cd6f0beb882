-- Current state of every user (deleted users are gone).
with current_rows as (
    {{ datastream_current(source('raw', 'users'), ['id']) }}
)

select
    cast(id as string) as user_id,
    cast(tenant_id as string) as tenant_id,
    cast(external_id as string) as external_id,
    lower(trim(cast(email as string))) as email,
    trim(cast(full_name as string)) as full_name,
    nullif(trim(cast(department as string)), '') as department,
    nullif(trim(cast(role as string)), '') as role,
    nullif(trim(cast(location as string)), '') as location,
    cast(team_id as string) as team_id,
    cast(created_at as timestamp) as created_at,
    cast(updated_at as timestamp) as updated_at,
    _changed_at
from current_rows
