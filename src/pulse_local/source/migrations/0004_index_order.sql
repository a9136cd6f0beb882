-- Secondary indexes lead with the column their queries always give, not with tenant_id.
--
-- Every lookup of the processor and every foreign-key check names the tenant AND a key
-- ("tenant_id = $1 and id = $2"). With an index that leads with tenant_id alone, a planner
-- without fresh statistics (a new table, a table grown since its last analyze) rates
-- "scan the tenant's entries, filter on the key" as cheap as the unique index, and caches
-- that plan for the connection's life: measured on the processor, every answer's check of
-- its response then read ~200 index entries (all of its tenant's responses), and the
-- statement dropping a revision's removed answers read ~700, growing with the data. Led by
-- the other column, these indexes serve the same queries (equality on both columns, or on
-- the leading one with a range after tenant_id) and cannot be mistaken for a key lookup.
drop index users_team_idx;
create index users_team_idx on users (team_id, tenant_id);
drop index questions_assessment_idx;
create index questions_assessment_idx on questions (assessment_id, tenant_id, position);
drop index runs_assessment_idx;
create index runs_assessment_idx on assessment_runs (assessment_id, tenant_id, opens_at);
drop index run_participants_user_idx;
create index run_participants_user_idx on run_participants (user_id, tenant_id);
drop index responses_assessment_submitted_idx;
create index responses_assessment_submitted_idx on responses (assessment_id, tenant_id, submitted_at);
drop index responses_user_idx;
create index responses_user_idx on responses (user_id, tenant_id);
drop index responses_run_idx;
create index responses_run_idx on responses (run_id, tenant_id);
drop index answers_question_idx;
create index answers_question_idx on answers (question_id, tenant_id);
drop index webhook_deliveries_response_idx;
create index webhook_deliveries_response_idx on webhook_deliveries (response_id, tenant_id);

-- The same for the keys of responses, the table every webhook reads and writes: its unique
-- keys (tenant_id, id) and (tenant_id, typeform_token) become (id, tenant_id) and
-- (typeform_token, tenant_id), so a token lookup is never taken for a "scan the tenant"
-- (foreign keys and "on conflict (tenant_id, typeform_token)" match a key by its columns,
-- in any order).
alter table answers drop constraint answers_tenant_id_response_id_fkey;
alter table webhook_deliveries drop constraint webhook_deliveries_tenant_id_response_id_fkey;
alter table responses drop constraint responses_tenant_id_id_key;
alter table responses add constraint responses_id_tenant_id_key unique (id, tenant_id);
alter table responses drop constraint responses_tenant_id_typeform_token_key;
alter table responses add constraint responses_typeform_token_tenant_id_key
    unique (typeform_token, tenant_id);
alter table answers add constraint answers_tenant_id_response_id_fkey
    foreign key (tenant_id, response_id) references responses (tenant_id, id) on delete cascade;
alter table webhook_deliveries add constraint webhook_deliveries_tenant_id_response_id_fkey
    foreign key (tenant_id, response_id) references responses (tenant_id, id)
    on delete set null (response_id);

-- And of users, which every webhook looks up by external id.
alter table run_participants drop constraint run_participants_tenant_id_user_id_fkey;
alter table responses drop constraint responses_tenant_id_user_id_fkey;
alter table users drop constraint users_tenant_id_id_key;
alter table users add constraint users_id_tenant_id_key unique (id, tenant_id);
alter table users drop constraint users_tenant_id_external_id_key;
alter table users add constraint users_external_id_tenant_id_key unique (external_id, tenant_id);
alter table users drop constraint users_tenant_id_email_key;
alter table users add constraint users_email_tenant_id_key unique (email, tenant_id);
alter table run_participants add constraint run_participants_tenant_id_user_id_fkey
    foreign key (tenant_id, user_id) references users (tenant_id, id) on delete cascade;
alter table responses add constraint responses_tenant_id_user_id_fkey
    foreign key (tenant_id, user_id) references users (tenant_id, id);
