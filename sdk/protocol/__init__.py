"""The wire protocol, defined once: the Redis key layout, the message envelope, the run
record, ids and times, and one typed function per Lua script.

Gateway, executors, scheduler and tools all go through this package; docs/protocol.md
describes the same thing for implementers in other languages.

- ``keys``: every key, stream, group and channel name (``Keys``), and partitions;
- ``envelope``: the ``Message`` of one run, as a stream entry carries it;
- ``record``: the run record's fields and ``RunRecord``, its typed view;
- ``clock``: run ids (UUIDv7) and times (ms since the epoch, RFC 3339);
- ``lua``: the one loader of every script, with the fragments they share;
- ``plans``: one function per script (keys, arguments, reply), without I/O;
- ``drivers``: run those calls over a sync or an asyncio client.
"""

from __future__ import annotations

from sdk.protocol.clock import new_id, now_ms, parse_time, rfc3339
from sdk.protocol.envelope import (
    JSON,
    PROTOCOL_VERSION,
    ChordRef,
    Link,
    Message,
    decode_envelope,
    encode_envelope,
)
from sdk.protocol.record import (
    F_ATTEMPTS,
    F_BODY,
    F_CALLBACK,
    F_CREATED,
    F_DEAD_ENTRY,
    F_DELIVERIES,
    F_ENV,
    F_ERROR,
    F_EXC,
    F_EXC_SIG,
    F_FINISHED,
    F_KILLED,
    F_META,
    F_PARENT,
    F_QUEUE,
    F_RESULT,
    F_RESULT_CT,
    F_RESULT_SIG,
    F_ROOT,
    F_RUNTIME,
    F_STARTED,
    F_STATE,
    F_TASK,
    F_WEBHOOK,
    F_WORKER,
    Fields,
    RunRecord,
    is_terminal,
)

__all__ = [
    "F_ATTEMPTS",
    "F_BODY",
    "F_CALLBACK",
    "F_CREATED",
    "F_DEAD_ENTRY",
    "F_DELIVERIES",
    "F_ENV",
    "F_ERROR",
    "F_EXC",
    "F_EXC_SIG",
    "F_FINISHED",
    "F_KILLED",
    "F_META",
    "F_PARENT",
    "F_QUEUE",
    "F_RESULT",
    "F_RESULT_CT",
    "F_RESULT_SIG",
    "F_ROOT",
    "F_RUNTIME",
    "F_STARTED",
    "F_STATE",
    "F_TASK",
    "F_WEBHOOK",
    "F_WORKER",
    "JSON",
    "PROTOCOL_VERSION",
    "ChordRef",
    "Fields",
    "Link",
    "Message",
    "RunRecord",
    "decode_envelope",
    "encode_envelope",
    "is_terminal",
    "new_id",
    "now_ms",
    "parse_time",
    "rfc3339",
]
