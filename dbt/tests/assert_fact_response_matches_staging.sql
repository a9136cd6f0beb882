-- fact_response holds exactly the current responses: same ids, same revision, and its
-- answered_count equals the number of current answers.
with staged as (
    select r.response_id, r.revision, count(a.answer_id) as answers
    from {{ ref('stg_responses') }} as r
    left join {{ ref('stg_answers') }} as a on a.response_id = r.response_id
    group by r.response_id, r.revision
)

select
    coalesce(s.response_id, f.response_id) as response_id,
    s.revision as staged_revision,
    f.revision as fact_revision,
    s.answers as staged_answers,
    f.answered_count as fact_answers
from staged as s
full outer join {{ ref('fact_response') }} as f on f.response_id = s.response_id
where s.response_id is null
   or f.response_id is null
   or s.revision != f.revision
   or s.answers != f.answered_count
