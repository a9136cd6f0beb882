-- Every change of every user, oldest first: the history dim_user_scd is built from.
-- Old images of updates (UPDATE-DELETE) carry no new state and are left out; deletes are
-- kept as tombstones (is_delete = true) so that the dimension can close the last version.
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
    timestamp_millis(datastream_metadata.source_timestamp) as changed_at,
    datastream_metadata.change_sequence_number as change_sequence,
    datastream_metadata.change_type as change_type,
    (datastream_metadata.change_type = 'DELETE') as is_delete
from {{ source('raw', 'users') }}
where datastream_metadata.change_type != 'UPDATE-DELETE'
