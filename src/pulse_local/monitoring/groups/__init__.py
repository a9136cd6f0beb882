"""One module per check group: ``<group>_checks(config, probes) -> list[CheckResult]`` and
the pure ``evaluate_*`` decisions it makes. `pulse_local.monitoring.checks` runs them."""
