-- Calendar dimension, one row per day from var('date_start') to var('date_end').
select
    cast(format_date('%Y%m%d', d) as int64) as date_key,
    d as date_day,
    extract(year from d) as year_number,
    extract(quarter from d) as quarter_number,
    extract(month from d) as month_number,
    format_date('%B', d) as month_name,
    extract(day from d) as day_of_month,
    extract(dayofweek from d) as day_of_week,
    format_date('%A', d) as day_name,
    extract(isoweek from d) as iso_week_number,
    -- the Monday of d's ISO week, as date_trunc(d, isoweek) gives it; written out because the
    -- BigQuery emulator of `make rehearse` cannot translate date_trunc(<unnest column>, isoweek)
    date_sub(d, interval mod(extract(dayofweek from d) + 5, 7) day) as iso_week_start,
    date_trunc(d, month) as month_start,
    extract(dayofweek from d) in (1, 7) as is_weekend
from unnest(
    generate_date_array(date '{{ var("date_start") }}', date '{{ var("date_end") }}', interval 1 day)
) as d
