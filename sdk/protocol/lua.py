"""The one loader of every Lua script: sources, composition, shared fragments.

Each script in ``scripts/`` says what it takes in its header. Every script is sent with
``PRELUDE`` in front: the constants it shares with Python and the fragments no script
should copy (the terminal-state set, the run event, a run's priority). A composed script
calls other scripts as local functions: each part is wrapped as
``local function <part>(KEYS, ARGV) ... end``, so its own ``KEYS``/``ARGV`` are the slices
the composed script passes it, and its ``return`` returns to the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from sdk import states
from sdk.protocol.keys import DEAD_LETTERS_MAX, DEFAULT_PRIORITY, PRIORITIES


def _lua_set(names: frozenset[str]) -> str:
    return "{" + ", ".join(f"{n} = true" for n in sorted(names)) + "}"


PRELUDE = f"""\
local TERMINAL = {_lua_set(states.TERMINAL)}
local DEFAULT_PRIORITY = {DEFAULT_PRIORITY}
local DEAD_LETTERS_MAX = {DEAD_LETTERS_MAX}
local function run_event(events, maxlen, run_id, state, task, queue)
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*',
             'kind', 'run', 'id', run_id, 'state', state, 'task', task, 'queue', queue)
end
local function priority_of(env)
  local ok, decoded = pcall(cjson.decode, env or '')
  local priority = tonumber(ok and type(decoded) == 'table' and decoded['priority'])
  if priority and priority >= {PRIORITIES.start} and priority <= {PRIORITIES.stop - 1} then
    return priority
  end
  return DEFAULT_PRIORITY
end
"""


@dataclass(frozen=True, slots=True)
class Lua:
    """One script as the server runs it; ``sha`` is what ``EVALSHA`` names it by."""

    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    return (files(__package__) / "scripts" / f"{name}.lua").read_text()


def _script(name: str, *parts: str) -> Lua:
    functions = "".join(
        f"local function {part}(KEYS, ARGV)\n{_read(part)}\nend\n" for part in parts
    )
    source = PRELUDE + functions + _read(name)
    return Lua(name, source, hashlib.sha1(source.encode()).hexdigest())


SUBMIT = _script("submit")
SUBMIT_MANY = _script("submit_many", "submit")
SUBMIT_ONCE = _script("submit_once", "submit")
START = _script("start")
FINISH = _script("finish", "submit", "chord_open")
FETCH = _script("fetch")
STEP = _script("step", "submit", "chord_open", "finish", "start", "fetch")
RETRY = _script("retry")
CHORD_OPEN = _script("chord_open")
CHORD_READ = _script("chord_read")
PROMOTE = _script("promote")
REVOKE = _script("revoke", "submit", "chord_open", "finish")
REQUEUE = _script("requeue")
RATE = _script("rate")
PROGRESS = _script("progress")
WEBHOOK_ENQUEUE = _script("webhook_enqueue")
WEBHOOK_CLAIM = _script("webhook_claim")
WEBHOOK_RECORD = _script("webhook_record")
WEBHOOK_RELEASE = _script("webhook_release")
SCHEDULE_FIRED = _script("schedule_fired")
SCHEDULE_UPSERT = _script("schedule_upsert")
LEASE_RENEW = _script("lease_renew")
LEASE_RELEASE = _script("lease_release")

ALL = (
    SUBMIT,
    SUBMIT_MANY,
    SUBMIT_ONCE,
    START,
    FINISH,
    FETCH,
    STEP,
    RETRY,
    CHORD_OPEN,
    CHORD_READ,
    PROMOTE,
    REVOKE,
    REQUEUE,
    RATE,
    PROGRESS,
    WEBHOOK_ENQUEUE,
    WEBHOOK_CLAIM,
    WEBHOOK_RECORD,
    WEBHOOK_RELEASE,
    SCHEDULE_FIRED,
    SCHEDULE_UPSERT,
    LEASE_RENEW,
    LEASE_RELEASE,
)
