"""Choosing the stack mode: `PULSE_STACK=native|docker|auto` (auto: docker when a daemon answers)."""

from __future__ import annotations

from pulse_local.config import Settings
from pulse_local.stack.base import Stack


def stack_for(settings: Settings) -> Stack:
    """The stack for these settings."""
    from pulse_local.stack.docker import DockerStack, docker_daemon_answers
    from pulse_local.stack.native import NativeStack

    mode = settings.stack
    if mode == "auto":
        mode = "docker" if docker_daemon_answers() else "native"
    if mode == "docker":
        return DockerStack(settings)
    return NativeStack(settings)
