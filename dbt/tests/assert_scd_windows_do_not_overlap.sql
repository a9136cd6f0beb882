-- No two versions of a user are valid at the same instant (windows are [valid_from, valid_to)).
select a.user_id, a.user_scd_key, b.user_scd_key as overlapping_key
from {{ ref('dim_user_scd') }} as a
inner join {{ ref('dim_user_scd') }} as b
    on a.user_id = b.user_id
    and a.user_scd_key < b.user_scd_key
    and a.valid_from < coalesce(b.valid_to, timestamp '9999-12-31 23:59:59+00')
    and b.valid_from < coalesce(a.valid_to, timestamp '9999-12-31 23:59:59+00')
    and a.valid_from < coalesce(a.valid_to, timestamp '9999-12-31 23:59:59+00')
    and b.valid_from < coalesce(b.valid_to, timestamp '9999-12-31 23:59:59+00')
