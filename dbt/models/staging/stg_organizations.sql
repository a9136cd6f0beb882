-- Current state of every organization (tenant) from its Datastream change rows.
with current_rows as (
    {{ datastream_current(source('raw', 'organizations'), ['id']) }}
)

select
    cast(id as string) as tenant_id,
    cast(slug as string) as tenant_slug,
    trim(cast(name as string)) as tenant_name,
    cast(created_at as timestamp) as created_at,
    cast(updated_at as timestamp) as updated_at,
    _changed_at
from current_rows
