"""Find a stack's secrets where they must never be: logs, `status --json`, alerts, manifests.

Used by the tests that grep everything a run leaves behind (tests/e2e/test_pipeline_e2e.py,
tests/integration/stack/test_no_secret_in_ps.py, tests/integration/stack/test_snapshots.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pulse_local import secret_files
from pulse_local.config import Settings


def stack_secrets(settings: Settings, tokens: Iterable[str] = ()) -> dict[str, str]:
    """Every secret of the stack, by name: the roles' passwords, the Prefect API's auth
    string (and its password alone), the serving token key, each tenant's webhook secrets
    (read from the database when it answers) and the given issued `tokens`."""
    found = {"db admin password": settings.admin_password(),
             "db app password": settings.app_password()}
    auth = secret_files.read_secret(settings.state_dir, secret_files.PREFECT_API_AUTH)
    if auth:
        found["prefect auth string"] = auth
        found["prefect auth password"] = auth.partition(":")[2]
    from pulse_local.serving.auth import signing_key_path

    key = signing_key_path(settings)
    if key.exists():
        found["serving token key"] = key.read_text().strip()
    for i, token in enumerate(tokens):
        found[f"issued token {i}"] = token
    found.update(_webhook_secrets(settings))
    return found


def _webhook_secrets(settings: Settings) -> dict[str, str]:
    import psycopg

    try:
        with psycopg.connect(settings.admin_dsn(), connect_timeout=5) as conn:
            found = conn.execute("select to_regclass('webhook_secrets') is not null").fetchone()
            if not (found and found[0]):
                return {}
            rows = conn.execute("select tenant_id::text, secret from webhook_secrets").fetchall()
    except psycopg.OperationalError:
        return {}
    return {f"webhook secret of {tenant}": secret for tenant, secret in rows}


def state_logs(settings: Settings) -> dict[str, str]:
    """Every log file under the state directory (the services', dbt's, anything ``*.log``)
    and every file of ``logs/`` and ``alerts/``, by path."""
    state = settings.state_dir
    paths: set[Path] = set(state.rglob("*.log"))
    for folder in ("logs", "alerts"):
        if (state / folder).is_dir():
            paths |= {p for p in (state / folder).rglob("*") if p.is_file()}
    return {str(p): p.read_text(errors="replace") for p in sorted(paths)}


def leaks(texts: Mapping[str, str], secrets: Mapping[str, str]) -> list[str]:
    """``"<where>: <secret name>"`` for every secret found in a text (empty: none)."""
    return [f"{where}: {name}" for where, text in texts.items()
            for name, value in secrets.items() if value and value in text]
