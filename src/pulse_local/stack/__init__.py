"""The local stack: start, stop and inspect the services the pipeline needs.

Two modes share one interface (:class:`pulse_local.stack.base.Stack`): native processes started
by this project (the default, and whenever no Docker daemon answers) and Docker Compose.
"""

import os

# The stack probes services with gRPC clients in threads while it forks service processes;
# gRPC's fork handlers only print warnings then, so they are turned off.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from pulse_local.stack.base import ServiceStatus, Stack, StartReport
from pulse_local.stack.select import stack_for

__all__ = ["ServiceStatus", "Stack", "StartReport", "stack_for"]
