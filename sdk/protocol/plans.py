"""One typed function per script: it owns the script's keys, argument order and reply.

Each function plans a call without doing any I/O (a ``ScriptCall``: the script, its
``KEYS`` and ``ARGV``, and how to read its reply); ``sdk/protocol/drivers.py`` runs plans
over a sync or an asyncio client, so the two never drift apart. Nothing outside
``sdk/protocol`` builds a script's arguments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar, cast

import msgspec

from sdk import states
from sdk.config import Settings
from sdk.protocol import lua
from sdk.protocol.clock import now_ms
from sdk.protocol.envelope import Message, encode_envelope
from sdk.protocol.keys import GROUP, PRIORITIES, Keys
from sdk.protocol.record import F_CALLBACK, F_PARENT, F_ROOT

R = TypeVar("R")
Arg = bytes | str | int | float


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes that bound what Redis keeps."""

    history: int = 10_000  # runs listed by GET /runs, per partition
    events: int = 100_000  # entries kept in each events stream (approximate)
    result_ttl: int = 86_400  # seconds a finished run's record is kept

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(history=settings.history_size, result_ttl=settings.result_expires)


class ScriptCall(msgspec.Struct, Generic[R], frozen=True):
    """A planned script call; ``parse`` turns the server's reply into ``R``. A Struct:
    three are made per run on a worker's hot path, where a NamedTuple cost 0.35 us each
    and a Struct 0.12 us."""

    script: lua.Lua
    keys: list[str]
    args: list[Arg]
    parse: Callable[[Any], R]


def _int(reply: Any) -> int:
    return int(reply)


def _bool(reply: Any) -> bool:
    return bool(reply)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class Verdict(NamedTuple):
    """A script's {outcome, state} reply: what it did, and the state it found."""

    outcome: str
    state: str


def _verdict(reply: Any) -> Verdict:
    outcome, state = reply
    return Verdict(_text(outcome), _text(state))


# -- submission -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Submission:
    """One run to submit: its envelope and its encoded arguments."""

    message: Message
    body: bytes


def _submit_plan(keys: Keys, limits: Limits, sub: Submission) -> tuple[list[str], list[Arg]]:
    m = sub.message
    part = keys.partition(m.id)
    delayed = m.eta is not None and m.eta > now_ms()
    target = keys.delayed(part, m.queue) if delayed else keys.stream(part, m.queue, m.priority)
    args: list[Arg] = [
        "delayed" if delayed else "stream",
        m.eta or 0,
        m.id,
        encode_envelope(m),
        sub.body,
        m.created_at,
        limits.history,
        limits.events,
        m.queue,
        m.task,
        states.SCHEDULED if delayed else states.PENDING,
    ]
    for name, value in ((F_PARENT, m.parent_id), (F_ROOT, m.root_id), (F_CALLBACK, m.callback_url)):
        if value:
            args += [name, value]
    return [target, keys.run(m.id), keys.history(part), keys.events(part), keys.queues(part)], args


def submit(keys: Keys, limits: Limits, sub: Submission) -> ScriptCall[bool]:
    """Create a run's record and queue it; False when another run has its id."""
    k, a = _submit_plan(keys, limits, sub)
    return ScriptCall(lua.SUBMIT, k, a, _bool)


SUBMIT_CHUNK = 500  # runs per submit_many.lua call: a bounded script, a bounded reply


@dataclass(frozen=True, slots=True)
class SubmitMany:
    """Calls that submit a batch, one partition each, and where their replies belong."""

    calls: list[ScriptCall[list[bool]]]
    positions: list[list[int]]  # for each call, the batch index of each of its runs
    size: int

    def merge(self, replies: Sequence[list[bool]]) -> list[bool]:
        """The created flags in batch order, from the calls' replies in call order."""
        created = [False] * self.size
        for where, reply in zip(self.positions, replies, strict=True):
            for i, flag in zip(where, reply, strict=True):
                created[i] = flag
        return created


def _flags(reply: Any) -> list[bool]:
    return [bool(x) for x in reply]


def submit_many(keys: Keys, limits: Limits, subs: Sequence[Submission]) -> SubmitMany:
    """submit.lua for each run, batched per partition, ``SUBMIT_CHUNK`` runs a call."""
    by_part: dict[int, list[int]] = defaultdict(list)
    for i, sub in enumerate(subs):
        by_part[keys.partition(sub.message.id)].append(i)
    calls, positions = [], []
    for indices in by_part.values():
        for start in range(0, len(indices), SUBMIT_CHUNK):
            chunk = indices[start : start + SUBMIT_CHUNK]
            all_keys: list[str] = []
            all_args: list[Arg] = []
            for i in chunk:
                k, a = _submit_plan(keys, limits, subs[i])
                all_keys += k
                all_args += [len(a), *a]
            calls.append(ScriptCall(lua.SUBMIT_MANY, all_keys, all_args, _flags))
            positions.append(chunk)
    return SubmitMany(calls, positions, len(subs))


class Once(NamedTuple):
    """submit_once.lua's reply: created, or the answer remembered under the key."""

    created: bool
    remembered: bytes | None


def _once(reply: Any) -> Once:
    return Once(reply[0] == 1, reply[1] if len(reply) > 1 else None)


def submit_once(
    keys: Keys, limits: Limits, sub: Submission, idempotency_key: str, answer: bytes
) -> ScriptCall[Once]:
    """Submit under an idempotency key, remembering ``answer`` for repeats. The run's id
    must be of the key's partition (``Keys.run_id_for``)."""
    k, a = _submit_plan(keys, limits, sub)
    if keys.partition(sub.message.id) != keys.key_partition(idempotency_key):
        raise ValueError("an idempotent run's id must be of its key's partition")
    return ScriptCall(
        lua.SUBMIT_ONCE,
        [*k, keys.idempotency(idempotency_key)],
        [*a, answer, limits.result_ttl],
        _once,
    )


# -- execution (executors) ------------------------------------------------------------------
class StreamEntry(msgspec.Struct, frozen=True):
    """One entry read from a queue stream (a Struct, as ``ScriptCall``: one per run)."""

    stream: str
    id: str
    fields: dict[bytes, bytes]


StartVerdict = Literal["STARTED", "REVOKE", "DEAD", "KILLED", "DONE"]


class Start(msgspec.Struct, frozen=True):
    """start.lua's reply (see its header for each verdict)."""

    verdict: StartVerdict
    attempts: int
    deliveries: int
    killed: bytes  # the error recorded by the worker that stopped it (KILLED only)


def _start(reply: Any) -> Start:
    verdict, attempts, deliveries, *killed = reply
    return Start(
        cast(StartVerdict, _text(verdict)),
        int(attempts),
        int(deliveries),
        killed[0] if killed else b"",
    )


def start(
    keys: Keys, limits: Limits, message: Message, worker_id: str, max_deliveries: int
) -> ScriptCall[Start]:
    part = keys.partition(message.id)
    return ScriptCall(
        lua.START,
        [keys.run(message.id), keys.events(part), keys.revoked(part)],
        [
            message.id,
            worker_id,
            now_ms(),
            limits.events,
            message.task,
            message.queue,
            message.created_at,
            max_deliveries,
        ],
        _start,
    )


def finish(
    keys: Keys,
    limits: Limits,
    message: Message,
    stream: str,
    entry_id: str,
    state: str,
    runtime_ms: int | None,
    fields: Mapping[str, Arg],
    then: Follow | None = None,
) -> ScriptCall[bool]:
    """Store a terminal outcome and acknowledge the entry (``entry_id`` "" for none);
    False when an outcome was stored already. ``then``: the runs this outcome submits,
    or fails, in the same call (every one of the run's partition)."""
    part = keys.partition(message.id)
    args: list[Arg] = [
        message.id,
        entry_id,
        GROUP,
        state,
        now_ms(),
        "" if runtime_ms is None else runtime_ms,
        limits.result_ttl,
        limits.events,
        message.task,
        message.queue,
        keys.done_channel(message.id),
        2 * len(fields),
    ]
    for name, value in fields.items():
        args += [name, value]
    run_keys = [keys.run(message.id), stream, keys.events(part), keys.dead(part, message.queue)]
    if then is not None:
        _follow(keys, limits, then, part, run_keys, args)
    return ScriptCall(lua.FINISH, run_keys, args, _bool)


class ChordMember(msgspec.Struct, frozen=True):
    """A chord header run's place: its index, and the body its finish may submit."""

    body: Message  # the body's envelope (its id names the chord)
    index: int
    error: bytes  # the body's error JSON should this run not succeed


class Opening(msgspec.Struct, frozen=True):
    """A chord that a finish call opens (a group in a chain): its body, held in the chord
    hash, and its header's size; the header's runs are among the call's submissions."""

    body: Submission
    size: int
    content_type: str


class Follow(msgspec.Struct, frozen=True):
    """What an outcome brings about in its finish call, all in the finishing run's
    partition: chords to open, then runs to submit (the next link of a chain, a chord's
    header); runs that end with it, in ``end_state`` with ``end_fields`` (the links after
    a link that did not succeed); the chord it counts in as a header member."""

    open: Sequence[Opening] = ()
    submit: Sequence[Submission] = ()
    end: Sequence[Message] = ()
    end_state: str = states.FAILURE
    end_fields: Mapping[str, Arg] = msgspec.field(default_factory=dict)
    chord: ChordMember | None = None


def _follow(
    keys: Keys, limits: Limits, then: Follow, part: int, run_keys: list[str], args: list[Arg]
) -> None:
    def mine(run_id: str) -> None:
        if keys.partition(run_id) != part:
            raise ValueError(f"follow-up run {run_id} is not of partition {part}")

    for chord in then.open:
        mine(chord.body.message.id)
        run_keys.append(keys.chord(chord.body.message.id))
        args += ["open", *_open_args(keys, chord.body, chord.size, chord.content_type)]
    for sub in then.submit:
        mine(sub.message.id)
        k, a = _submit_plan(keys, limits, sub)
        run_keys += k
        args += ["submit", len(a), *a]
    if then.end:
        args += ["end", then.end_state, 2 * len(then.end_fields)]
        for name, value in then.end_fields.items():
            args += [name, value]
        args.append(len(then.end))
        for m in then.end:
            mine(m.id)
            run_keys.append(keys.run(m.id))
            args += [m.id, m.task, m.queue, keys.done_channel(m.id)]
    if then.chord is not None:
        body = then.chord.body
        mine(body.id)
        run_keys.append(keys.chord(body.id))
        run_keys += _submit_plan(keys, limits, Submission(body, b""))[0]
        args += ["chord", then.chord.index, limits.history, then.chord.error]


def chord_open(keys: Keys, body: Submission, size: int, content_type: str) -> ScriptCall[bool]:
    """Open a chord of ``size`` header runs whose last submits ``body``; False when a
    chord of that id exists already."""
    return ScriptCall(
        lua.CHORD_OPEN, [keys.chord(body.message.id)], _open_args(keys, body, size, content_type),
        _bool,
    )  # fmt: skip


def _open_args(keys: Keys, body: Submission, size: int, content_type: str) -> list[Arg]:
    m = body.message
    return [
        size,
        m.id,
        m.task,
        m.queue,
        encode_envelope(m),
        body.body,
        content_type,
        keys.done_channel(m.id),
    ]


class ChordResults(msgspec.Struct, frozen=True):
    """A chord header's results, encoded, in order ("" for a run that kept none); or,
    when a header run did not succeed, the chord's ``error`` JSON instead."""

    content_type: str
    results: list[bytes]
    error: bytes = b""


def _chord_results(reply: Any) -> ChordResults | None:
    if not reply:
        return None
    ct, error, *results = (r if isinstance(r, bytes) else r.encode() for r in reply)
    return ChordResults(ct.decode(), results, error)


def chord_read(keys: Keys, body_id: str) -> ScriptCall[ChordResults | None]:
    """The header's results for the chord's body; None when the chord is gone."""
    return ScriptCall(lua.CHORD_READ, [keys.chord(body_id)], [], _chord_results)


def _entries(reply: Any) -> list[StreamEntry]:
    return [
        StreamEntry(_text(stream), _text(entry_id), dict(zip(flat[::2], flat[1::2], strict=True)))
        for stream, entry_id, flat in reply
    ]


def fetch(
    streams: Sequence[str], consumer: str, count: int, fair: bool
) -> ScriptCall[list[StreamEntry]]:
    """New runs from ``streams`` (one partition's, highest priority first)."""
    return ScriptCall(
        lua.FETCH, list(streams), [GROUP, consumer, count, "1" if fair else "0"], _entries
    )


_STEP_PARTS = {lua.START.name: "start", lua.FETCH.name: "fetch"}  # what step.lua runs after


def step(
    outcome: ScriptCall[bool] | None, then: ScriptCall[R] | None
) -> ScriptCall[tuple[bool | None, R | None]]:
    """``outcome`` (a finish) and then ``then`` (a start or a fetch) in one call. The
    reply: whether the outcome was stored (None when none was sent) and ``then``'s reply
    (None when there is no ``then``)."""
    o_keys, o_args = (outcome.keys, outcome.args) if outcome else ([], [])
    part = _STEP_PARTS[then.script.name] if then else ""
    t_keys, t_args = (then.keys, then.args) if then else ([], [])

    def parse(reply: Any) -> tuple[bool | None, R | None]:
        stored, rest = reply
        return (
            None if int(stored) < 0 else bool(stored),
            then.parse(rest) if then is not None else None,
        )

    return ScriptCall(
        lua.STEP,
        [*o_keys, *t_keys],
        [len(o_keys), len(o_args), part, *o_args, *t_args],
        parse,
    )


def retry(
    keys: Keys,
    limits: Limits,
    retried: Message,
    stream: str,
    entry_id: str,
    error: bytes,
    body: bytes,
) -> ScriptCall[bool]:
    """Acknowledge the entry and queue the next attempt (``retried``, due at its eta);
    False when the run was already terminal (then it is only acknowledged)."""
    part = keys.partition(retried.id)
    return ScriptCall(
        lua.RETRY,
        [keys.run(retried.id), stream, keys.events(part), keys.delayed(part, retried.queue)],
        [
            retried.id,
            entry_id,
            GROUP,
            retried.eta or now_ms(),
            encode_envelope(retried),
            limits.events,
            retried.task,
            retried.queue,
            error,
            now_ms(),
            body,
        ],
        _bool,
    )


def promote(
    keys: Keys, limits: Limits, part: int, queue: str, due_ids: Sequence[str], now: int
) -> ScriptCall[int]:
    """Move ``due_ids`` (read from the delayed set by the caller) to the queue's streams;
    how many were moved."""
    streams = [keys.stream(part, queue, p) for p in PRIORITIES]
    return ScriptCall(
        lua.PROMOTE,
        [keys.delayed(part, queue), keys.events(part), *streams, *map(keys.run, due_ids)],
        [now, limits.events, queue, *due_ids],
        _int,
    )


def rate(keys: Keys, task: str, interval_ms: int) -> ScriptCall[int]:
    """Take the task's next rate-limit slot: 0 when taken, else ms to wait."""
    return ScriptCall(lua.RATE, [keys.rate(task)], [now_ms(), interval_ms], _int)


def progress(
    keys: Keys, limits: Limits, message: Message, state: str, meta: bytes
) -> ScriptCall[bool]:
    """A custom state with JSON ``meta`` (``update_state``); False once the run is terminal."""
    part = keys.partition(message.id)
    return ScriptCall(
        lua.PROGRESS,
        [keys.run(message.id), keys.events(part)],
        [message.id, state, meta, limits.events, message.task, message.queue],
        _bool,
    )


# -- operations on a run ----------------------------------------------------------------------
RevokeOutcome = Literal["MISSING", "FINISHED", "REVOKED", "RUNNING", "TERMINATING"]


def revoke(
    keys: Keys,
    limits: Limits,
    run_id: str,
    queue: str,
    terminate: bool,
    ended: ScriptCall[bool] | None = None,
) -> ScriptCall[Verdict]:
    """Revoke a run of ``queue`` (read from its record by the caller); ``ended``: the
    finish call that stores it REVOKED with its follow-ups, made if it never starts."""
    part, now = keys.partition(run_id), now_ms()
    run_keys = [keys.run(run_id), keys.revoked(part), keys.events(part), keys.delayed(part, queue)]
    args: list[Arg] = [
        run_id,
        now,
        now + limits.result_ttl * 1000,
        limits.events,
        keys.done_channel(run_id),
        "1" if terminate else "0",
        limits.result_ttl,
        keys.control,
        queue,
    ]
    if ended is not None:
        run_keys += ended.keys
        args += [len(ended.keys), len(ended.args), *ended.args]
    return ScriptCall(lua.REVOKE, run_keys, args, _verdict)


def requeue(keys: Keys, limits: Limits, run_id: str, queue: str) -> ScriptCall[Verdict]:
    """Requeue a dead run of ``queue`` (read from its record by the caller)."""
    part = keys.partition(run_id)
    streams = [keys.stream(part, queue, p) for p in PRIORITIES]
    return ScriptCall(
        lua.REQUEUE,
        [keys.run(run_id), keys.events(part), keys.dead(part, queue), *streams],
        [run_id, limits.events, queue],
        _verdict,
    )


# -- webhooks (gateway) -----------------------------------------------------------------------
def webhook_enqueue(
    keys: Keys, run_id: str, url: str, payload: bytes, ttl_s: int, view: bytes
) -> ScriptCall[bool]:
    """Queue a run's webhook once; False when it already has (or had) one."""
    part = keys.partition(run_id)
    return ScriptCall(
        lua.WEBHOOK_ENQUEUE,
        [keys.run(run_id), keys.webhook(run_id), keys.webhooks_fresh(part)],
        [run_id, url, payload, now_ms(), ttl_s, view],
        _bool,
    )


def _ids(reply: Any) -> list[str]:
    return [_text(i) for i in reply]


def webhook_claim(
    keys: Keys, part: int, now: int, lease_ms: int, limit: int
) -> ScriptCall[list[str]]:
    return ScriptCall(
        lua.WEBHOOK_CLAIM,
        [keys.webhooks_due(part), keys.webhooks_fresh(part)],
        [now, lease_ms, limit],
        _ids,
    )


def webhook_record(
    keys: Keys, run_id: str, attempt: int, log: bytes, view: bytes, next_ms: int | None
) -> ScriptCall[bool]:
    """Store attempt number ``attempt``; ``next_ms`` None ends the delivery."""
    return ScriptCall(
        lua.WEBHOOK_RECORD,
        [keys.webhook(run_id), keys.run(run_id), keys.webhooks_due(keys.partition(run_id))],
        [run_id, attempt, log, view, "" if next_ms is None else next_ms],
        _bool,
    )


def webhook_release(
    keys: Keys, due_ms: int, claims: Iterable[tuple[str, int]]
) -> list[ScriptCall[int]]:
    """Hand claims (run id, lease end) back, due at ``due_ms``: one call per partition."""
    by_part: dict[int, list[Arg]] = defaultdict(list)
    for run_id, until in claims:
        by_part[keys.partition(run_id)] += [run_id, until]
    return [
        ScriptCall(lua.WEBHOOK_RELEASE, [keys.webhooks_due(part)], [due_ms, *pairs], _int)
        for part, pairs in by_part.items()
    ]


# -- scheduler --------------------------------------------------------------------------------
def schedule_fired(
    keys: Keys, schedule_id: str, run_id: str, queued_at: int, fire: int | None, recent: int
) -> ScriptCall[bool]:
    """Record a run of a schedule (``fire`` None for a manual run)."""
    return ScriptCall(
        lua.SCHEDULE_FIRED,
        [keys.schedules, keys.schedule_state],
        [schedule_id, run_id, queued_at, "" if fire is None else fire, recent],
        _bool,
    )


def schedule_upsert(keys: Keys, schedule_id: str, definition: bytes, app: str) -> ScriptCall[bool]:
    """Write a static definition unless runtime edits own it (docs/scheduling.md)."""
    return ScriptCall(
        lua.SCHEDULE_UPSERT,
        [keys.schedules, keys.schedules_version],
        [schedule_id, definition, app],
        _bool,
    )


def lease_renew(key: str, holder: str, ttl_ms: int) -> ScriptCall[bool]:
    return ScriptCall(lua.LEASE_RENEW, [key], [holder, ttl_ms], _bool)


def lease_release(key: str, holder: str) -> ScriptCall[bool]:
    return ScriptCall(lua.LEASE_RELEASE, [key], [holder], _bool)
