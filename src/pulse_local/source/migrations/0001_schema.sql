-- Pulse OLTP schema: 11 tenant-owned tables. Every row carries tenant_id; child tables reference
-- their parents through (tenant_id, id) so a row can never point into another tenant, and every
-- natural unique key starts with tenant_id so a unique violation never reveals that another
-- tenant's row exists (unique checks ignore row-level security).
-- Placeholders: {{app_role}} is replaced by the quoted application role (settings.db_app_user).

create table organizations (
    id          uuid primary key default gen_random_uuid(),
    slug        text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text not null check (length(name) between 1 and 200),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- Webhook signing secrets, kept apart from organizations so they are never published to CDC.
-- Several active secrets per tenant allow rotation without dropping deliveries.
create table webhook_secrets (
    id          uuid primary key default gen_random_uuid(),
    tenant_id   uuid not null references organizations (id) on delete cascade,
    secret      text not null check (length(secret) >= 16),
    active      boolean not null default true,
    created_at  timestamptz not null default now(),
    unique (tenant_id, secret)
);

create table teams (
    id          uuid primary key default gen_random_uuid(),
    tenant_id   uuid not null references organizations (id) on delete cascade,
    name        text not null check (length(name) between 1 and 200),
    created_at  timestamptz not null default now(),
    unique (tenant_id, name),
    unique (tenant_id, id)
);

-- Users carry attributes that change over time (department, role, location, team): the
-- warehouse builds dim_user_scd from the CDC history of this table.
create table users (
    id          uuid primary key default gen_random_uuid(),
    tenant_id   uuid not null references organizations (id) on delete cascade,
    external_id text not null check (length(external_id) between 1 and 200),
    email       text not null check (position('@' in email) > 1),
    full_name   text not null,
    department  text,
    role        text,
    location    text,
    team_id     uuid,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    unique (tenant_id, external_id),
    unique (tenant_id, email),
    unique (tenant_id, id),
    foreign key (tenant_id, team_id) references teams (tenant_id, id)
);

-- An assessment is one Typeform form.
create table assessments (
    id               uuid primary key default gen_random_uuid(),
    tenant_id        uuid not null references organizations (id) on delete cascade,
    typeform_form_id text not null check (length(typeform_form_id) between 1 and 64),
    title            text not null,
    status           text not null default 'active' check (status in ('draft', 'active', 'archived')),
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (tenant_id, typeform_form_id),
    unique (tenant_id, id)
);

-- A question is one Typeform field, matched by its `ref`. Scored questions have a scale;
-- reverse-keyed ones score (scale_min + scale_max - answer).
create table questions (
    id             uuid primary key default gen_random_uuid(),
    tenant_id      uuid not null,
    assessment_id  uuid not null,
    ref            text not null check (length(ref) between 1 and 255),
    title          text not null,
    question_type  text not null check (question_type in (
                       'opinion_scale', 'rating', 'number', 'yes_no', 'multiple_choice',
                       'dropdown', 'short_text', 'long_text', 'email')),
    position       integer not null check (position >= 0),
    required       boolean not null default true,
    scale_min      integer,
    scale_max      integer,
    reverse_keyed  boolean not null default false,
    weight         numeric(6, 3) not null default 1 check (weight >= 0),
    created_at     timestamptz not null default now(),
    unique (tenant_id, assessment_id, ref),
    unique (tenant_id, id),
    foreign key (tenant_id, assessment_id) references assessments (tenant_id, id) on delete cascade,
    check ((scale_min is null) = (scale_max is null)),
    check (scale_max is null or scale_max > scale_min),
    check (not reverse_keyed or scale_min is not null)
);

-- A run is one time window in which an assessment is sent out (e.g. "Q3 pulse").
create table assessment_runs (
    id            uuid primary key default gen_random_uuid(),
    tenant_id     uuid not null,
    assessment_id uuid not null,
    name          text not null,
    opens_at      timestamptz not null,
    closes_at     timestamptz not null,
    created_at    timestamptz not null default now(),
    unique (tenant_id, id),
    unique (tenant_id, assessment_id, name),
    foreign key (tenant_id, assessment_id) references assessments (tenant_id, id) on delete cascade,
    check (closes_at > opens_at)
);

-- Who was invited to a run (the denominator of response rates).
create table run_participants (
    tenant_id   uuid not null,
    run_id      uuid not null,
    user_id     uuid not null,
    invited_at  timestamptz not null default now(),
    primary key (tenant_id, run_id, user_id),
    foreign key (tenant_id, run_id) references assessment_runs (tenant_id, id) on delete cascade,
    foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade
);

-- One row per Typeform response (token). A later delivery of the same token with other content
-- and a submitted_at not older than the stored one is a revision: the row is updated in place
-- and `revision` goes up; identical re-deliveries change nothing.
create table responses (
    id                uuid primary key default gen_random_uuid(),
    tenant_id         uuid not null,
    assessment_id     uuid not null,
    run_id            uuid,
    user_id           uuid,
    typeform_token    text not null check (length(typeform_token) between 1 and 128),
    typeform_event_id text not null,
    landed_at         timestamptz,
    submitted_at      timestamptz not null,
    is_complete       boolean not null,
    answer_count      integer not null check (answer_count >= 0),
    total_score       numeric(12, 3),
    max_score         numeric(12, 3),
    hidden            jsonb not null default '{}'::jsonb,
    payload_sha256    text not null check (length(payload_sha256) = 64),
    revision          integer not null default 1 check (revision >= 1),
    received_at       timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    unique (tenant_id, typeform_token),
    unique (tenant_id, id),
    foreign key (tenant_id, assessment_id) references assessments (tenant_id, id),
    foreign key (tenant_id, run_id) references assessment_runs (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);

create table answers (
    id             bigint generated always as identity primary key,
    tenant_id      uuid not null,
    response_id    uuid not null,
    question_id    uuid not null,
    answer_type    text not null,
    value_text     text,
    value_number   numeric,
    value_bool     boolean,
    value_json     jsonb,
    raw_score      numeric(12, 3),
    score          numeric(12, 3),
    unique (tenant_id, response_id, question_id),
    foreign key (tenant_id, response_id) references responses (tenant_id, id) on delete cascade,
    foreign key (tenant_id, question_id) references questions (tenant_id, id),
    check ((raw_score is null) = (score is null))
);

-- Ingest log: every accepted delivery (including duplicates), for audits and replays.
create table webhook_deliveries (
    id              bigint generated always as identity primary key,
    tenant_id       uuid not null references organizations (id) on delete cascade,
    event_id        text not null,
    typeform_token  text not null,
    response_id     uuid,
    outcome         text not null check (outcome in ('created', 'revised', 'duplicate', 'stale')),
    payload_sha256  text not null,
    received_at     timestamptz not null default now(),
    foreign key (tenant_id, response_id) references responses (tenant_id, id) on delete set null (response_id)
);

-- Indexes: foreign keys and the queries of the processor and of incremental extracts.
create index webhook_secrets_tenant_idx on webhook_secrets (tenant_id) where active;
create index teams_tenant_idx on teams (tenant_id);
create index users_team_idx on users (tenant_id, team_id);
create index questions_assessment_idx on questions (tenant_id, assessment_id, position);
create index runs_assessment_idx on assessment_runs (tenant_id, assessment_id, opens_at);
create index run_participants_user_idx on run_participants (tenant_id, user_id);
create index responses_assessment_submitted_idx on responses (tenant_id, assessment_id, submitted_at);
create index responses_user_idx on responses (tenant_id, user_id);
create index responses_run_idx on responses (tenant_id, run_id);
create index responses_updated_idx on responses (updated_at);
create index answers_question_idx on answers (tenant_id, question_id);
create index webhook_deliveries_tenant_received_idx on webhook_deliveries (tenant_id, received_at);
create index webhook_deliveries_response_idx on webhook_deliveries (tenant_id, response_id);

-- Privileges of the application role: read reference data, write what the processor writes.
grant usage on schema public to {{app_role}};
grant select on organizations, webhook_secrets, teams, users, assessments, questions,
    assessment_runs, run_participants to {{app_role}};
grant select, insert, update, delete on responses, answers to {{app_role}};
grant select, insert on webhook_deliveries to {{app_role}};
