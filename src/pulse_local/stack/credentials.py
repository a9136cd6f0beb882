"""The stack's generated credentials: database role passwords and the Prefect API's auth string.

Each is generated once per stack (`pulse_local.secret_files`, ``<state dir>/secrets/``, mode
0600) when the service that checks it starts: the role passwords when PostgreSQL starts, the
auth string when Prefect's server starts. A service already running keeps what it started with
(a stack made by an older pulse-local keeps the old fixed passwords until its next `up` starts
PostgreSQL), so the files and the running services never disagree.

The roles' passwords live in PostgreSQL's catalog, which travels with the data directory (and
with a snapshot of it); the files do not. So whenever PostgreSQL starts on a data directory
whose roles were last given other passwords (a snapshot from another machine or stack, a stack
made before passwords were generated, a deleted ``secrets/``), the current ones are set in
PostgreSQL's single-user mode before the server starts: no password is needed to do it, none
is lost, and nothing else runs meanwhile. A digest of the applied passwords in the cluster's
directory (``postgres/roles.applied``) tells whether that is due.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pulse_local.stack.postgres as pg
from pulse_local import secret_files
from pulse_local.config import Settings
from pulse_local.endpoints import prefect_auth_string
from pulse_local.errors import StackStateError

__all__ = ["prefect_auth_string", "prepare_stack_secrets", "sync_role_passwords"]


def prepare_stack_secrets(settings: Settings, starting: set[str] | frozenset[str],
                          running: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Generate the secrets of the services about to start (`starting`: service names):
    the role passwords for ``postgres``, the API auth string for ``prefect``.

    A stack made before passwords were generated, whose PostgreSQL restarts while other
    services run (`running`) with the old passwords in their environment, keeps the old ones
    (they would lose their database otherwise); the returned note says how to switch."""
    state = settings.state_dir
    note = None
    if "postgres" in starting:
        missing = secret_files.read_secret(state, secret_files.DB_ADMIN_PASSWORD) is None
        if missing and running:
            note = ("the database roles keep their old fixed passwords while "
                    f"{', '.join(sorted(running))} run with them: `pulse-local down && "
                    "pulse-local up` switches the stack to generated ones")
        else:
            secret_files.ensure_secret(state, secret_files.DB_ADMIN_PASSWORD)
            secret_files.ensure_secret(state, secret_files.DB_APP_PASSWORD)
    if "prefect" in starting:
        secret_files.ensure_secret(state, secret_files.PREFECT_API_AUTH,
                                   secret_files.random_auth_string)
    return note


# Role passwords ------------------------------------------------------------------------------
def applied_marker(settings: Settings) -> Path:
    return pg.cluster_dir(settings) / "roles.applied"


def passwords_digest(settings: Settings) -> str:
    """A digest of the roles' current passwords (never the passwords: 192 random bits each)."""
    digest = hashlib.sha256(b"pulse-local roles v1")
    for part in (settings.db_admin_user, settings.admin_password(), settings.db_app_user,
                 settings.app_password()):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def role_password_statements(settings: Settings) -> list[str]:
    """One line per statement (single-user mode's input): the owner's password, and the
    application role's when that role exists (a new cluster gets it at bootstrap)."""
    app, admin = settings.db_app_user, settings.db_admin_user
    return [
        f"ALTER ROLE {_identifier(admin)} PASSWORD {_literal(settings.admin_password())};",
        (f"DO $pulse$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(app)}) "
         f"THEN ALTER ROLE {_identifier(app)} PASSWORD {_literal(settings.app_password())}; "
         "END IF; END$pulse$;"),
    ]


def sync_role_passwords(settings: Settings, *, new_cluster: bool) -> bool:
    """Before PostgreSQL starts: make the roles' passwords the stack's current ones when the
    cluster last got others (see the module's doc). Returns whether they were set."""
    marker = applied_marker(settings)
    digest = passwords_digest(settings)
    if new_cluster:  # initdb gave the owner its password; bootstrap creates the application role
        marker.write_text(digest + "\n")
        return False
    if marker.exists() and marker.read_text().strip() == digest:
        return False
    server = pg.server_argv(settings)
    argv = [server[0], "--single", *server[1:], "-c", "log_min_error_statement=panic",
            "postgres"]
    result = subprocess.run(argv, input="\n".join(role_password_statements(settings)) + "\n",
                            capture_output=True, text=True, check=False,
                            **pg.run_as_postgres(settings))
    failed = result.returncode != 0 or "ERROR:" in result.stderr or "FATAL:" in result.stderr
    if failed:
        text = result.stderr
        for secret in (settings.admin_password(), settings.app_password()):
            text = text.replace(secret, "<password>")
        raise StackStateError(
            f"could not set the database roles' passwords in single-user mode (exit "
            f"{result.returncode}):\n{text.strip()[-2000:]}\nIs another server running on "
            f"{pg.data_dir(settings)}? Stop it (`pulse-local down`) and run `pulse-local up`")
    marker.write_text(digest + "\n")
    return True
