-- One row per assessment run: invitations, responses, completion rate and average score.
with participants as (
    select run_id, count(*) as participants
    from {{ ref('stg_run_participants') }}
    group by run_id
),

responses as (
    select
        run_id,
        count(*) as responses,
        cast(countif(is_complete) as int64) as complete_responses,
        count(distinct user_id) as responding_users,
        avg(if(is_complete, cast(score as float64), null)) as average_score,
        avg(if(is_complete, cast(score_ratio as float64), null)) as average_score_ratio
    from {{ ref('fact_response') }}
    where run_id is not null
    group by run_id
),

completed_participants as (
    select p.run_id, count(distinct p.user_id) as completed_participants
    from {{ ref('stg_run_participants') }} as p
    inner join {{ ref('fact_response') }} as f
        on f.run_id = p.run_id and f.user_id = p.user_id and f.is_complete
    group by p.run_id
)

select
    r.run_id,
    r.tenant_id,
    r.assessment_id,
    r.run_name,
    r.opens_at,
    r.closes_at,
    cast(format_date('%Y%m%d', date(r.opens_at)) as int64) as opens_date_key,
    coalesce(p.participants, 0) as participants,
    coalesce(s.responses, 0) as responses,
    coalesce(s.complete_responses, 0) as complete_responses,
    coalesce(s.responding_users, 0) as responding_users,
    coalesce(c.completed_participants, 0) as completed_participants,
    safe_divide(coalesce(c.completed_participants, 0), p.participants) as completion_rate,
    s.average_score,
    s.average_score_ratio
from {{ ref('stg_assessment_runs') }} as r
left join participants as p on p.run_id = r.run_id
left join responses as s on s.run_id = r.run_id
left join completed_participants as c on c.run_id = r.run_id
