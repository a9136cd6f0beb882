-- Row-level security on every tenant-owned table.
--
-- The tenant of a transaction is the setting `pulse.tenant_id`, set only through
-- pulse_local.source.tenancy.tenant() with set_config(..., is_local => true). When it is not set
-- (NULL, or '' after a transaction that set it ended) app_current_tenant() is NULL, every policy
-- compares with NULL, and the query sees NO rows: forgetting the tenant never shows all rows.
-- FORCE makes the policies apply to the table owner too (it matters on Cloud SQL, where the owner
-- is not a superuser; a real superuser always bypasses RLS).

create function app_current_tenant() returns uuid
    language sql stable parallel safe
    as $$ select nullif(current_setting('pulse.tenant_id', true), '')::uuid $$;

grant execute on function app_current_tenant() to {{app_role}};

-- organizations: a tenant sees its own row; the processor may additionally look one row up by
-- slug (pulse.lookup_slug, set by tenancy.resolve_tenant) to learn the tenant id of a webhook URL.
alter table organizations enable row level security;
alter table organizations force row level security;
create policy tenant_isolation on organizations
    using (id = app_current_tenant()) with check (id = app_current_tenant());
create policy lookup_by_slug on organizations for select
    using (slug = nullif(current_setting('pulse.lookup_slug', true), ''));

do $$
declare
    t text;
begin
    foreach t in array array['webhook_secrets', 'teams', 'users', 'assessments', 'questions',
                             'assessment_runs', 'run_participants', 'responses', 'answers',
                             'webhook_deliveries']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format('alter table %I alter column tenant_id set default app_current_tenant()', t);
        execute format(
            'create policy tenant_isolation on %I using (tenant_id = app_current_tenant()) '
            'with check (tenant_id = app_current_tenant())', t);
    end loop;
end
$$;
