"""Apply the Bigtable declarations with table-admin calls only.

Tables and column families are created when missing and GC rules updated when they drifted.
Families that exist but are not declared are reported, never deleted (that would drop data).
The instance must already exist: instance admin is not available on the emulator, and on GCP
creating an instance is a billing decision made outside this code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pulse_local.resources._google import API_TIMEOUT, explained, is_already_exists, is_not_found
from pulse_local.resources.errors import ResourceApplyError
from pulse_local.resources.models import (
    BigtableDeclarations,
    GcRuleSpec,
    TableSpec,
    format_duration,
)
from pulse_local.resources.report import ApplyReport

if TYPE_CHECKING:
    from google.cloud.bigtable import Client
    from google.cloud.bigtable.column_family import (
        GCRuleIntersection,
        GCRuleUnion,
        MaxAgeGCRule,
        MaxVersionsGCRule,
    )
    from google.cloud.bigtable.instance import Instance

    #: The GC rules `gc_rule` builds (the library's base class declares no ``to_pb``).
    GcRule = MaxVersionsGCRule | MaxAgeGCRule | GCRuleUnion | GCRuleIntersection


def gc_rule(spec: GcRuleSpec) -> GcRule:
    """The client-library GC rule for ``spec``."""
    from google.cloud.bigtable import column_family as cf

    rules: list[GcRule] = []
    if spec.max_versions is not None:
        rules.append(cf.MaxVersionsGCRule(spec.max_versions))
    if spec.max_age is not None:
        rules.append(cf.MaxAgeGCRule(spec.max_age))
    if spec.combine == "union":
        return cf.GCRuleUnion(rules)
    if spec.combine == "intersection":
        return cf.GCRuleIntersection(rules)
    return rules[0]


def describe_gc_rule(spec: GcRuleSpec) -> str:
    """``max_versions=1``, ``max_age=7d``, or both joined by the combine mode."""
    parts = []
    if spec.max_versions is not None:
        parts.append(f"max_versions={spec.max_versions}")
    if spec.max_age is not None:
        parts.append(f"max_age={format_duration(spec.max_age)}")
    return f" {spec.combine} ".join(parts)


def _same_rule(actual: GcRule | None, desired: GcRule) -> bool:
    """Compare two GC rules by their protobuf form."""
    return actual is not None and actual.to_pb() == desired.to_pb()


def _existing_tables(admin_client: Client, instance: Instance, instance_id: str) -> set[str]:
    """Ids of the tables of ``instance``; a clear error when the instance does not exist."""
    with explained(f"listing tables of Bigtable instance {instance.name}"):
        try:
            tables = admin_client.table_admin_client.list_tables(
                request={"parent": instance.name}, timeout=API_TIMEOUT
            )
        except Exception as exc:
            if is_not_found(exc):
                raise ResourceApplyError(
                    f"Bigtable instance {instance.name} does not exist: create it with "
                    f"`gcloud bigtable instances create {instance_id} --display-name={instance_id} "
                    f"--cluster-config=id={instance_id}-c1,zone=<zone>` or set "
                    f"PULSE_BIGTABLE_INSTANCE"
                ) from exc
            raise
    prefix = instance.name + "/tables/"
    return {t.name.removeprefix(prefix) for t in tables}


def _create_table(instance: Instance, spec: TableSpec, report: ApplyReport) -> bool:
    """Create the table with all its families; False if someone created it meanwhile."""
    table = instance.table(spec.name)
    families = {fid: gc_rule(rule) for fid, rule in spec.column_families.items()}
    with explained(f"creating Bigtable table {table.name}"):
        try:
            table.create(column_families=families)
        except Exception as exc:
            if is_already_exists(exc):
                return False
            raise
    report.add("table", spec.name, "created")
    for fid, rule in spec.column_families.items():
        report.add("column_family", f"{spec.name}/{fid}", "created", describe_gc_rule(rule))
    return True


def _reconcile_families(instance: Instance, spec: TableSpec, report: ApplyReport) -> None:
    """Create missing families and update drifted GC rules of an existing table."""
    table = instance.table(spec.name)
    with explained(f"reading column families of {table.name}"):
        actual = table.list_column_families()
    report.add("table", spec.name, "exists")
    for fid, rule_spec in spec.column_families.items():
        name = f"{spec.name}/{fid}"
        desired = gc_rule(rule_spec)
        family = table.column_family(fid, gc_rule=desired)
        if fid not in actual:
            with explained(f"creating column family {fid} of {table.name}"):
                family.create()
            report.add("column_family", name, "created", describe_gc_rule(rule_spec))
        elif not _same_rule(actual[fid].gc_rule, desired):
            with explained(f"updating the GC rule of column family {fid} of {table.name}"):
                family.update()
            report.add(
                "column_family", name, "updated", f"gc rule now {describe_gc_rule(rule_spec)}"
            )
        else:
            report.add("column_family", name, "exists")
    for fid in sorted(set(actual) - set(spec.column_families)):
        report.add(
            "column_family",
            f"{spec.name}/{fid}",
            "drift",
            "not declared; left in place: declare it, or delete it with "
            f"`cbt -instance <instance> deletefamily {spec.name} {fid}` if its data can go",
        )


def apply_bigtable(
    declarations: BigtableDeclarations, admin_client: Client, instance_id: str
) -> ApplyReport:
    """Apply the table declarations to ``instance_id``; idempotent.

    ``admin_client`` is a ``google.cloud.bigtable.Client(project, admin=True)`` pointed at the
    emulator or at GCP. Raises `ResourceApplyError` when an API call fails.
    """
    instance = admin_client.instance(instance_id)
    report = ApplyReport("bigtable", instance.name)
    existing = _existing_tables(admin_client, instance, instance_id)
    for spec in declarations.tables:
        if spec.name in existing or not _create_table(instance, spec, report):
            _reconcile_families(instance, spec, report)
    return report


def plan_bigtable(
    declarations: BigtableDeclarations, project: str, instance_id: str
) -> ApplyReport:
    """What `apply_bigtable` would ensure, without calling any API (dry run)."""
    report = ApplyReport("bigtable", f"projects/{project}/instances/{instance_id}")
    for spec in declarations.tables:
        report.add(
            "table", spec.name, "planned", f"ensure families {', '.join(spec.column_families)}"
        )
        for fid, rule in spec.column_families.items():
            report.add("column_family", f"{spec.name}/{fid}", "planned", describe_gc_rule(rule))
    return report
