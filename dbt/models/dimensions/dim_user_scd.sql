-- Users as a type 2 slowly changing dimension, built from the CDC history of `users`.
-- A new version starts whenever a tracked attribute (department, role, location, team)
-- changes; changes of other columns do not open a version. A version is valid from the
-- source commit time of its first change (inclusive) to the start of the next version or
-- the user's deletion (exclusive); the open version (valid_to null) is the current one.
-- Identity attributes (external id, email, name) are type 1: the latest known values.
with changes as (
    select
        *,
        case
            when is_delete then '<deleted>'
            else concat(
                coalesce(department, '<null>'), '|', coalesce(role, '<null>'), '|',
                coalesce(location, '<null>'), '|', coalesce(team_id, '<null>'))
        end as tracked_state
    from {{ ref('stg_user_changes') }}
),

with_previous as (
    select
        *,
        lag(tracked_state) over (
            partition by user_id order by changed_at, change_sequence
        ) as previous_state
    from changes
),

-- the first change of every run of identical tracked states (tombstones included)
boundaries as (
    select
        *,
        lead(changed_at) over (
            partition by user_id order by changed_at, change_sequence
        ) as next_boundary_at
    from with_previous
    where previous_state is null or tracked_state != previous_state
),

identity as (
    select user_id, external_id, email, full_name
    from changes
    where not is_delete
    qualify row_number() over (
        partition by user_id order by changed_at desc, change_sequence desc
    ) = 1
),

versions as (
    select
        b.user_id,
        b.tenant_id,
        row_number() over (
            partition by b.user_id order by b.changed_at, b.change_sequence
        ) as version_number,
        b.department,
        b.role,
        b.location,
        b.team_id,
        b.changed_at as valid_from,
        b.next_boundary_at as valid_to
    from boundaries as b
    where not b.is_delete
)

select
    to_hex(md5(concat(v.user_id, '|', cast(v.version_number as string)))) as user_scd_key,
    v.user_id,
    v.tenant_id,
    v.version_number,
    i.external_id,
    i.email,
    i.full_name,
    v.department,
    v.role,
    v.location,
    v.team_id,
    v.valid_from,
    v.valid_to,
    v.valid_to is null as is_current
from versions as v
inner join identity as i on i.user_id = v.user_id
