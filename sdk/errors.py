"""One exception tree for every component; the gateway maps it to HTTP in one place."""

from __future__ import annotations

from typing import Any


class CeleriacError(Exception):
    """Root of every error Celeriac raises on purpose."""

    code = "error"  # machine-readable, in the JSON error model (SPEC §3)

    def __init__(self, message: str = "", *, details: Any = None) -> None:
        # Raised as a bare class (a threads slot's time limit), the docstring says what.
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)
        self.details = details


# -- configuration ---------------------------------------------------------------------------


class ConfigurationError(CeleriacError):
    """A setting is missing or invalid."""

    code = "configuration_error"


# -- payloads and the wire ---------------------------------------------------------------------


class ProtocolError(CeleriacError):
    """A message or payload does not follow the wire protocol."""

    code = "protocol_error"


class UnknownProtocolVersion(ProtocolError):
    """An envelope of a protocol version this side does not speak."""

    code = "unknown_protocol_version"


class UnsupportedContentType(ProtocolError):
    """The content type has no serializer."""

    code = "unsupported_content_type"


class SerializationError(ProtocolError):
    """A payload could not be encoded or decoded."""

    code = "serialization_error"


class SignatureError(ProtocolError):
    """A pickle payload is unsigned or its signature does not verify."""

    code = "bad_signature"


class PayloadTooLarge(ProtocolError):
    """The request body is over the configured limit."""

    code = "payload_too_large"


class InvalidRequest(ProtocolError):
    """The request is malformed."""

    code = "invalid_request"


# -- tasks and runs --------------------------------------------------------------------------


class NotFound(CeleriacError):
    """The named resource does not exist."""

    code = "not_found"


class TaskNotFound(NotFound):
    """No executor has registered a task of that name."""

    code = "task_not_found"


class RunNotFound(NotFound):
    """No run has that id (or its record has expired)."""

    code = "run_not_found"


class InvalidArguments(CeleriacError):
    """The arguments do not match the task's signature."""

    code = "invalid_arguments"


class DuplicateTask(CeleriacError):
    """Two tasks were registered under one name."""

    code = "duplicate_task"


class Conflict(CeleriacError):
    """The request conflicts with the current state."""

    code = "conflict"


class IdempotencyConflict(Conflict):
    """An idempotency key was used before with a different request."""

    code = "idempotency_conflict"


class InvalidCallback(InvalidArguments):
    """A callback URL is malformed, unresolvable or points at a refused address."""

    code = "invalid_callback_url"


# -- schedules ------------------------------------------------------------------------------


class ScheduleNotFound(NotFound):
    """No schedule has that id."""

    code = "schedule_not_found"


class InvalidSchedule(CeleriacError):
    """A schedule's definition is invalid (trigger, time zone, task or arguments)."""

    code = "invalid_schedule"


# -- results -----------------------------------------------------------------------------------


class ResultTimeout(CeleriacError, TimeoutError):
    """The run did not reach a terminal state in time."""

    code = "timeout"


class TaskError(CeleriacError):
    """A task failed remotely and its exception could not be rebuilt locally."""

    def __init__(self, type_name: str, message: str, traceback: str | None = None) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type = type_name
        self.remote_message = message
        self.traceback = traceback


class MaxRetriesExceeded(CeleriacError):
    """A task asked for a retry after using up its retries."""

    code = "max_retries_exceeded"


class TimeLimitExceeded(CeleriacError):
    """The run went past its hard time limit and was stopped."""

    code = "time_limit_exceeded"


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a task at its soft time limit; it may catch it to clean up."""

    code = "soft_time_limit_exceeded"


class Terminated(CeleriacError):
    """Control flow: the run was revoked with ``terminate=True`` while running."""

    code = "terminated"


class TaskRevoked(TaskError):
    """The run was revoked before it finished."""


class TaskExpired(TaskError):
    """The run expired before it started."""


# -- infrastructure ----------------------------------------------------------------------------


class BrokerUnavailable(CeleriacError):
    """Redis cannot be reached right now."""

    code = "broker_unavailable"


# -- control flow inside tasks (not failures) --------------------------------------------------


class Retry(CeleriacError):
    """Control flow: the task asked to run again later."""

    def __init__(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        super().__init__(f"retry in {countdown}s" if countdown is not None else "retry")
        self.exc = exc
        self.countdown = countdown
        self.max_retries = max_retries


class Reject(CeleriacError):
    """Control flow: the task refuses the run. It goes to the dead letters (state DEAD);
    with ``requeue=True`` it runs again at once, counted as a retry (so a task that always
    rejects cannot loop forever, as it can in Celery)."""

    def __init__(self, reason: object = None, requeue: bool = False) -> None:
        super().__init__("" if reason is None else str(reason))
        self.reason = reason
        self.requeue = requeue


def _codes(root: type[CeleriacError]) -> dict[str, type[CeleriacError]]:
    found = {root.code: root}
    for sub in root.__subclasses__():
        found.update(_codes(sub))
    return found


def from_code(code: str, message: str, details: Any = None) -> CeleriacError:
    """Rebuild the exception a gateway reported as ``{"code", "message"}``."""
    cls = _codes(CeleriacError).get(code, CeleriacError)
    if cls in (TaskError, Retry, ResultTimeout) or issubclass(cls, TaskError):
        return CeleriacError(message, details=details)
    return cls(message, details=details)


# Celery's names for the same errors (``from celery.exceptions import X`` becomes
# ``from sdk.errors import X``).
MaxRetriesExceededError = MaxRetriesExceeded
TaskRevokedError = TaskRevoked
ImproperlyConfigured = ConfigurationError
NotRegistered = TaskNotFound
