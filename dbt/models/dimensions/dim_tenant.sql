-- One row per tenant (organization), with its current size.
with users as (
    select tenant_id, count(*) as active_users
    from {{ ref('stg_users') }}
    group by tenant_id
),

assessments as (
    select tenant_id, count(*) as assessments
    from {{ ref('stg_assessments') }}
    group by tenant_id
)

select
    o.tenant_id as tenant_key,
    o.tenant_id,
    o.tenant_slug,
    o.tenant_name,
    o.created_at,
    o.updated_at,
    coalesce(u.active_users, 0) as active_users,
    coalesce(a.assessments, 0) as assessments
from {{ ref('stg_organizations') }} as o
left join users as u on u.tenant_id = o.tenant_id
left join assessments as a on a.tenant_id = o.tenant_id
