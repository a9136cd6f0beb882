{{
  config(
    materialized='incremental',
    unique_key='response_id',
    incremental_strategy=pulse_incremental_strategy(),
    on_schema_change='append_new_columns',
    partition_by=({'field': 'submitted_date', 'data_type': 'date'} if target.type == 'bigquery' else none),
    cluster_by=(['tenant_id'] if target.type == 'bigquery' else none),
    post_hook=[
      "delete from {{ this }} where response_id not in (select response_id from {{ ref('stg_responses') }})"
    ]
  )
}}
-- One row per (current) Typeform response: who, when, and its scores.
-- Incremental: a run re-reads only responses whose row or answers changed since the
-- table's high-water mark (minus a look-back for late CDC rows) and upserts them on
-- response_id (MERGE on BigQuery, delete+insert on DuckDB); the post-hook removes
-- responses deleted at the source.
with responses as (
    select *
    from {{ ref('stg_responses') }}
    {% if pulse_is_incremental() %}
    where _changed_at > (
            select timestamp_sub(coalesce(max(_changed_at), timestamp '1970-01-01 00:00:00+00'),
                                 interval {{ var('incremental_lookback_minutes') }} minute)
            from {{ this }})
       or response_id in (
            select response_id
            from {{ ref('stg_answers') }}
            where _changed_at > (
                select timestamp_sub(coalesce(max(_changed_at), timestamp '1970-01-01 00:00:00+00'),
                                     interval {{ var('incremental_lookback_minutes') }} minute)
                from {{ this }}))
    {% endif %}
),

answers as (
    select
        a.response_id,
        a.value_number,
        a._changed_at,
        q.is_scored and a.value_number is not null as is_scored,
        q.scale_min,
        q.scale_max,
        q.is_reverse_keyed,
        q.weight
    from {{ ref('stg_answers') }} as a
    inner join {{ ref('stg_questions') }} as q on q.question_id = a.question_id
    {% if pulse_is_incremental() %}
    where a.response_id in (select response_id from responses)
    {% endif %}
),

answer_totals as (
    select
        response_id,
        count(*) as answered_count,
        cast(countif(is_scored) as int64) as scored_answer_count,
        cast(countif(is_scored and is_reverse_keyed) as int64) as reverse_keyed_answer_count,
        cast(sum(if(is_scored, value_number * weight, null)) as numeric) as raw_score,
        cast(sum(if(is_scored,
            {{ reverse_key_score('value_number', 'scale_min', 'scale_max', 'is_reverse_keyed') }} * weight,
            null)) as numeric) as score,
        cast(sum(if(is_scored, scale_min * weight, null)) as numeric) as min_score,
        cast(sum(if(is_scored, scale_max * weight, null)) as numeric) as max_score,
        max(_changed_at) as answers_changed_at
    from answers
    group by response_id
),

-- the user's dimension version valid at submission; a response submitted before the
-- user's first recorded version (e.g. rows captured by the initial backfill) gets the first
user_versions as (
    select r.response_id, u.user_scd_key
    from responses as r
    inner join {{ ref('dim_user_scd') }} as u on u.user_id = r.user_id
    where true  -- BigQuery has required a WHERE/GROUP BY/HAVING next to QUALIFY
    qualify row_number() over (
        partition by r.response_id
        order by
            case
                when u.valid_from <= r.submitted_at
                     and (u.valid_to is null or r.submitted_at < u.valid_to) then 0
                else 1
            end,
            u.valid_from,
            -- versions committed in one source transaction share valid_from: the first wins
            u.version_number
    ) = 1
)

select
    r.response_id,
    r.tenant_id,
    r.assessment_id,
    r.run_id,
    r.user_id,
    uv.user_scd_key,
    cast(format_date('%Y%m%d', date(r.submitted_at)) as int64) as submitted_date_key,
    date(r.submitted_at) as submitted_date,
    r.submitted_at,
    r.is_complete,
    coalesce(t.answered_count, 0) as answered_count,
    coalesce(t.scored_answer_count, 0) as scored_answer_count,
    coalesce(t.reverse_keyed_answer_count, 0) as reverse_keyed_answer_count,
    t.raw_score,
    t.score,
    t.min_score,
    t.max_score,
    cast(safe_divide(t.score, t.max_score) as float64) as score_ratio,
    r.revision,
    greatest(r._changed_at, coalesce(t.answers_changed_at, r._changed_at)) as _changed_at
from responses as r
left join answer_totals as t on t.response_id = r.response_id
left join user_versions as uv on uv.response_id = r.response_id
