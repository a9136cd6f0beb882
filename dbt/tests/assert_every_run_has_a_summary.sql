-- Every current run has exactly one summary row.
select r.run_id
from {{ ref('stg_assessment_runs') }} as r
left join {{ ref('fact_run_summary') }} as s on s.run_id = r.run_id
where s.run_id is null
