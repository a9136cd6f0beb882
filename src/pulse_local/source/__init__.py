"""The source system: the multi-tenant Pulse OLTP database (schema, RLS, CDC) and fixture data.

Public entry points::

    pulse_local.source.migrations.migrate(settings) -> list[str]
    pulse_local.source.tenancy.tenant(conn, tenant_id)            # the only way to set a tenant
    pulse_local.source.fixtures.generate(scale, seed, out_dir) -> dict[str, int]
    pulse_local.source.seed.seed_reference_data(settings, dir) -> dict[str, int]
    pulse_local.source.replay.replay(settings, dir, concurrency) -> dict[int, int]
"""
