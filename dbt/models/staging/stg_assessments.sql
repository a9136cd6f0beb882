-- Current state of every assessment (Typeform form).
with current_rows as (
    {{ datastream_current(source('raw', 'assessments'), ['id']) }}
)

select
    cast(id as string) as assessment_id,
    cast(tenant_id as string) as tenant_id,
    cast(typeform_form_id as string) as typeform_form_id,
    trim(cast(title as string)) as title,
    lower(cast(status as string)) as status,
    cast(created_at as timestamp) as created_at,
    cast(updated_at as timestamp) as updated_at,
    _changed_at
from current_rows
