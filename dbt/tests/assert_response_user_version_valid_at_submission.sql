-- The user version a response points to is the one valid at submission, or the user's first
-- version when the response was submitted before it opened.
select f.response_id, f.submitted_at, u.valid_from, u.valid_to, u.version_number
from {{ ref('fact_response') }} as f
inner join {{ ref('dim_user_scd') }} as u on u.user_scd_key = f.user_scd_key
where f.user_id != u.user_id
   or not (
        (u.valid_from <= f.submitted_at and (u.valid_to is null or f.submitted_at < u.valid_to))
        or (u.version_number = 1 and f.submitted_at < u.valid_from)
   )
