-- Versions follow each other without gaps: version n+1 starts when version n ends, only the
-- last version may be open, and windows never end before they start.
select *
from (
    select
        user_id,
        version_number,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by user_id order by version_number) as next_valid_from
    from {{ ref('dim_user_scd') }}
)
where (next_valid_from is not null and (valid_to is null or valid_to != next_valid_from))
   or valid_to < valid_from
