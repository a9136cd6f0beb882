-- CDC: the publication Datastream (or the local CDC reader) follows, and replica identities.
--
-- Replica identity decides what the WAL carries for the OLD row of an UPDATE/DELETE:
--   FULL    users             SCD2 needs the before-image of changed attributes, and a delete
--                             must carry tenant/attributes to close the open SCD2 version.
--   FULL    answers           revisions delete-and-reinsert answers; the delete must carry
--                             response_id/question_id/tenant_id to retract the old fact.
--   DEFAULT everything else   (primary key) inserts/updates carry the whole new row; deletes
--                             are rare and the key is enough to tombstone the row.
-- Not published: webhook_secrets (secrets never leave the OLTP database) and
-- webhook_deliveries (operational log).

alter table users replica identity full;
alter table answers replica identity full;

do $$
begin
    if not exists (select 1 from pg_publication where pubname = 'pulse_pipeline') then
        create publication pulse_pipeline for table
            organizations, teams, users, assessments, questions, assessment_runs,
            run_participants, responses, answers;
    end if;
end
$$;

-- A read-everything role for the CDC user's initial backfill (logical decoding itself ignores
-- RLS, but Datastream's backfill SELECTs would see nothing under FORCE RLS). Grant it to the
-- Datastream login (`grant pulse_cdc to datastream`), never to the application role.
-- Creating a role needs CREATEROLE (superuser locally, cloudsqlsuperuser on Cloud SQL); when the
-- migrating role lacks it the step is skipped with a notice and the role is created by hand.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pulse_cdc') then
        if exists (select 1 from pg_roles where rolname = current_user
                   and (rolsuper or rolcreaterole)) then
            create role pulse_cdc nologin;
        else
            raise notice 'pulse_cdc role missing and % cannot create roles: create it by hand', current_user;
            return;
        end if;
    end if;
    grant select on organizations, teams, users, assessments, questions, assessment_runs,
        run_participants, responses, answers to pulse_cdc;
    create policy cdc_read_all on organizations for select to pulse_cdc using (true);
    create policy cdc_read_all on teams for select to pulse_cdc using (true);
    create policy cdc_read_all on users for select to pulse_cdc using (true);
    create policy cdc_read_all on assessments for select to pulse_cdc using (true);
    create policy cdc_read_all on questions for select to pulse_cdc using (true);
    create policy cdc_read_all on assessment_runs for select to pulse_cdc using (true);
    create policy cdc_read_all on run_participants for select to pulse_cdc using (true);
    create policy cdc_read_all on responses for select to pulse_cdc using (true);
    create policy cdc_read_all on answers for select to pulse_cdc using (true);
end
$$;
