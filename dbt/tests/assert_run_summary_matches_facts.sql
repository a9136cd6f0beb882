-- fact_run_summary agrees with fact_response and the invitations; rates are proportions.
with from_facts as (
    select run_id, count(*) as responses, countif(is_complete) as complete_responses
    from {{ ref('fact_response') }}
    where run_id is not null
    group by run_id
),

invited as (
    select run_id, count(*) as participants
    from {{ ref('stg_run_participants') }}
    group by run_id
)

select s.run_id, s.responses, f.responses as fact_responses, s.participants, i.participants as invited
from {{ ref('fact_run_summary') }} as s
left join from_facts as f on f.run_id = s.run_id
left join invited as i on i.run_id = s.run_id
where s.responses != coalesce(f.responses, 0)
   or s.complete_responses != coalesce(f.complete_responses, 0)
   or s.participants != coalesce(i.participants, 0)
   or s.completed_participants > s.participants
   or s.completion_rate < 0
   or s.completion_rate > 1
