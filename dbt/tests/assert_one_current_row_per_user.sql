-- Every existing user has exactly one current dim_user_scd row; deleted users have none.
with current_rows as (
    select user_id, count(*) as current_versions
    from {{ ref('dim_user_scd') }}
    where is_current
    group by user_id
)

select u.user_id, coalesce(c.current_versions, 0) as current_versions
from {{ ref('stg_users') }} as u
left join current_rows as c on c.user_id = u.user_id
where coalesce(c.current_versions, 0) != 1

union all

select c.user_id, c.current_versions
from current_rows as c
left join {{ ref('stg_users') }} as u on u.user_id = c.user_id
where u.user_id is null
