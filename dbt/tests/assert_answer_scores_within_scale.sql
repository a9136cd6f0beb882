-- The reverse-keyed score of every scored answer lies within its question's scale, and the
-- macro agrees with the score the ingest processor stored.
select
    a.answer_id,
    a.value_number,
    q.scale_min,
    q.scale_max,
    q.is_reverse_keyed,
    a.source_score,
    {{ reverse_key_score('a.value_number', 'q.scale_min', 'q.scale_max', 'q.is_reverse_keyed') }} as score
from {{ ref('stg_answers') }} as a
inner join {{ ref('stg_questions') }} as q on q.question_id = a.question_id
where q.is_scored
  and a.value_number is not null
  and (
    {{ reverse_key_score('a.value_number', 'q.scale_min', 'q.scale_max', 'q.is_reverse_keyed') }}
        not between q.scale_min and q.scale_max
    or (a.source_score is not null and abs(
        {{ reverse_key_score('a.value_number', 'q.scale_min', 'q.scale_max', 'q.is_reverse_keyed') }}
        - a.source_score) > 0.001)
  )
