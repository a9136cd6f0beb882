-- A response's score lies between the lowest and highest possible score of what it answered,
-- and counts are consistent.
select response_id, score, min_score, max_score, answered_count, scored_answer_count
from {{ ref('fact_response') }}
where score < min_score
   or score > max_score
   or scored_answer_count > answered_count
   or reverse_keyed_answer_count > scored_answer_count
   or (scored_answer_count = 0 and score is not null)
   or (scored_answer_count > 0 and score is null)
