"""The run record: a Redis hash per run (at ``Keys.run(id)``), and its typed view.

Field values are bytes in Redis; numbers are decimal strings. Scripts write the record
(docs/protocol.md lists which script sets which field); ``RunRecord`` is how Python reads it.
"""

from __future__ import annotations

import msgspec

from sdk import states

F_TASK = "task"
F_STATE = "state"
F_QUEUE = "queue"
F_CREATED = "created_at"
F_STARTED = "started_at"
F_FINISHED = "finished_at"
F_RUNTIME = "runtime_ms"
F_ATTEMPTS = "attempts"
F_DELIVERIES = "deliveries"  # deliveries of the current attempt round (reset by a retry)
F_WORKER = "worker"
F_PARENT = "parent_id"
F_ROOT = "root_id"
F_RESULT = "result"  # bytes in F_RESULT_CT
F_RESULT_CT = "result_ct"
F_RESULT_SIG = "result_sig"  # HMAC of F_RESULT when it is a pickle
F_ERROR = "error"  # JSON {"type", "message", "traceback"}
F_EXC = "exc"  # signed cloudpickle of the exception, when a signing key is set
F_EXC_SIG = "exc_sig"
F_META = "meta"  # JSON, from update_state(meta=...)
F_ENV = "env"  # the envelope, kept so a run can be retried or requeued
F_BODY = "body"
F_CALLBACK = "callback_url"
F_WEBHOOK = "webhook"  # JSON {"url", "state", "attempts"}, kept by the webhook dispatch
F_KILLED = "killed"  # JSON error, set by a worker that stopped the run over its time limit
F_DEAD_ENTRY = "dead_entry"  # the run's entry id in its dead-letter stream

Fields = dict[bytes, bytes]  # a record as HGETALL returns it
_TERMINAL = frozenset(s.encode() for s in states.TERMINAL)


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw is not None else None


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One run's record, typed. Payload fields stay bytes: only a codec may open them."""

    id: str
    task: str | None = None
    state: str | None = None
    queue: str | None = None
    created_at: int | None = None  # ms since the epoch
    started_at: int | None = None
    finished_at: int | None = None
    runtime_ms: int | None = None
    attempts: int = 0
    worker: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    result: bytes | None = None
    result_ct: str | None = None
    result_sig: str | None = None
    error: bytes | None = None  # JSON
    exc: bytes | None = None
    exc_sig: str | None = None
    meta: bytes | None = None  # JSON
    callback_url: str | None = None
    webhook: bytes | None = None  # JSON

    @classmethod
    def of(cls, run_id: str, fields: Fields) -> RunRecord:
        g = fields.get
        return cls(
            id=run_id,
            task=_text(g(b"task")),
            state=_text(g(b"state")),
            queue=_text(g(b"queue")),
            created_at=_int(g(b"created_at")),
            started_at=_int(g(b"started_at")),
            finished_at=_int(g(b"finished_at")),
            runtime_ms=_int(g(b"runtime_ms")),
            attempts=_int(g(b"attempts")) or 0,
            worker=_text(g(b"worker")),
            parent_id=_text(g(b"parent_id")),
            root_id=_text(g(b"root_id")),
            result=g(b"result"),
            result_ct=_text(g(b"result_ct")),
            result_sig=_text(g(b"result_sig")),
            error=g(b"error"),
            exc=g(b"exc"),
            exc_sig=_text(g(b"exc_sig")),
            meta=g(b"meta"),
            callback_url=_text(g(b"callback_url")),
            webhook=g(b"webhook"),
        )

    @property
    def terminal(self) -> bool:
        return self.state in states.TERMINAL


def is_terminal(fields: Fields | None) -> bool:
    """Whether a raw record (as HGETALL returns it) is in a terminal state."""
    return fields is not None and fields.get(b"state") in _TERMINAL
