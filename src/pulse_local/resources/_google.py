"""Translate Google API exceptions into `ResourceApplyError` with a hint.

google-api-core is imported lazily (inside functions) like every Google client in this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pulse_local.resources.errors import ResourceApplyError

T = TypeVar("T")

#: Seconds an admin call may take before it is abandoned (the emulators answer in milliseconds).
API_TIMEOUT = 30.0


def _hint(exc: Exception) -> str:
    """What the user should do about ``exc``."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, (gexc.PermissionDenied, gexc.Unauthenticated)):
        return (
            "check the credentials (`gcloud auth application-default login`) and that the "
            "caller has roles/pubsub.editor and roles/bigtable.admin on the project"
        )
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)):
        return (
            "the endpoint does not answer: start the stack (`pulse-local up`) or check "
            "PUBSUB_EMULATOR_HOST / BIGTABLE_EMULATOR_HOST"
        )
    if isinstance(exc, gexc.InvalidArgument):
        return "the declaration is not accepted by this endpoint: fix the resource file"
    return "see the error above"


def is_not_found(exc: BaseException) -> bool:
    """True for a NOT_FOUND answer."""
    from google.api_core import exceptions as gexc

    return isinstance(exc, gexc.NotFound)


def is_already_exists(exc: BaseException) -> bool:
    """True for an ALREADY_EXISTS answer (e.g. a concurrent apply created it first)."""
    from google.api_core import exceptions as gexc

    return isinstance(exc, gexc.AlreadyExists)


@contextmanager
def explained(what: str) -> Iterator[None]:
    """Re-raise Google API errors raised while doing ``what`` as `ResourceApplyError`."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        raise ResourceApplyError(f"{what} failed: {exc}. {_hint(exc)}") from exc


def get_or_none(fetch: Callable[[], T]) -> T | None:
    """Call ``fetch``; None when the resource does not exist (NOT_FOUND)."""
    from google.api_core import exceptions as gexc

    try:
        return fetch()
    except gexc.NotFound:
        return None
