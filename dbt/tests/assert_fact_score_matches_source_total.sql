-- Reconciliation with the ingest processor: the warehouse's weighted reverse-keyed score
-- equals the total_score the processor stored on the response (when it stored one).
select f.response_id, f.score, r.source_total_score, f.max_score, r.source_max_score
from {{ ref('fact_response') }} as f
inner join {{ ref('stg_responses') }} as r on r.response_id = f.response_id
where r.source_total_score is not null
  and (f.score is null
       or abs(f.score - r.source_total_score) > 0.001
       or abs(f.max_score - r.source_max_score) > 0.001)
