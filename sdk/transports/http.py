"""The gateway path: a producer submits and reads runs over HTTP (keep-alive, pooled)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from itertools import groupby
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from sdk.builtins import COLLECT
from sdk.calls import Call, Step, SubmitBody
from sdk.config import Settings
from sdk.errors import BrokerUnavailable, CeleriacError, InvalidRequest, from_code
from sdk.http_tasks import HttpTaskSpec
from sdk.runs import RunJSON
from sdk.transports import PerLoop

MAX_WAIT = 60  # the gateway caps ?wait= at this many seconds

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


def _body(call: Call) -> dict[str, Any]:
    body = SubmitBody(
        args=list(call.args), kwargs=call.kwargs, **msgspec.structs.asdict(call.options)
    )
    return msgspec.to_builtins(body)  # type: ignore[no-any-return]


_NO_WORKFLOWS = "over the gateway, a chain goes through send_workflows (POST /workflows)"
_NO_SAVED_GROUPS = "the gateway keeps only the groups sent through it (POST /workflows)"


def _signature(call: Call) -> dict[str, Any]:
    """A call as a member of ``POST /workflows``, its callbacks among its options."""
    options: dict[str, Any] = msgspec.to_builtins(call.options)
    if call.callbacks:
        options["link"] = [_signature(c) for c in call.callbacks]
    if call.errbacks:
        options["link_error"] = [_signature(c) for c in call.errbacks]
    return {
        "task": call.task,
        "args": list(call.args),
        "kwargs": call.kwargs,
        "options": options,
        "immutable": call.immutable,
    }


def _step(call: Call) -> dict[str, Any]:
    """A chain's step: a signature, a group (ended by the built-in collecting body) or a
    chord."""
    if not call.header:
        return _signature(call)
    header = [_chain_of(c) if c.chain else _signature(c) for c in call.header]
    if call.task == COLLECT:
        return {"group": header}
    return {"chord": {"header": header, "body": _signature(call)}}


def _chain_of(call: Call) -> dict[str, Any]:
    return {"chain": [_step(replace(call, chain=())), *map(_step, call.chain)]}


def workflow_json(call: Call) -> dict[str, Any]:
    """A call and what follows it as the body of ``POST /workflows``."""
    return _chain_of(call) if call.chain else _step(call)


def _steps(raw: list[dict[str, Any]]) -> list[Step]:
    return [
        Step(str(s["id"]), None if s.get("header") is None else tuple(s["header"])) for s in raw
    ]


def _over_workflows(call: Call) -> bool:
    """Whether the gateway takes this call only through ``POST /workflows``: it has
    later steps or callbacks, which ``POST /tasks`` has no field for."""
    return bool(call.chain or call.header or call.callbacks or call.errbacks)


def _plan_send(calls: Sequence[Call]) -> list[tuple[Request, int]]:
    """One request per run of a lone call, one batch request per run of same-task calls."""
    if any(map(_over_workflows, calls)):
        raise InvalidRequest(_NO_WORKFLOWS)
    plans: list[tuple[Request, int]] = []
    for task, group in groupby(calls, key=lambda c: c.task):
        items = list(group)
        path = f"/tasks/{quote(task, safe='')}"
        if len(items) == 1:
            plans.append((("POST", path, {"json": _body(items[0])}), 1))
        else:
            batch = {"items": [_body(c) for c in items]}
            plans.append((("POST", f"{path}/batch", {"json": batch}), len(items)))
    return plans


def _ids(response: httpx.Response, count: int) -> list[str]:
    _raise_for(response)
    data = response.json()
    return [data["id"]] if count == 1 and "id" in data else list(data["ids"])


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        err = response.json()["error"]
        exc = from_code(err["code"], err["message"], err.get("details"))
    except (ValueError, KeyError, TypeError):
        exc = CeleriacError(f"gateway answered {response.status_code}")
    raise exc


def _run(response: httpx.Response) -> RunJSON | None:
    if response.status_code == 404:
        return None
    _raise_for(response)
    run: RunJSON = response.json()
    return run


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        raise BrokerUnavailable(f"gateway unreachable: {exc}") from exc


class HttpTransport:
    def __init__(self, settings: Settings) -> None:
        headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._opts: dict[str, Any] = {
            "base_url": settings.gateway_url or "",
            "headers": headers,
            "timeout": httpx.Timeout(10.0, read=MAX_WAIT + 10.0),
        }
        self._client = httpx.Client(**self._opts)
        self._aclient = PerLoop(lambda: httpx.AsyncClient(**self._opts))

    @property
    def _async(self) -> httpx.AsyncClient:
        return self._aclient.get()

    def send(self, calls: Sequence[Call]) -> list[str]:
        if any(map(_over_workflows, calls)):  # a run with callbacks: one POST /workflows each
            return [
                self.send_workflows([c])[0][-1].id if _over_workflows(c) else self.send([c])[0]
                for c in calls
            ]
        ids: list[str] = []
        with _unavailable():
            for (method, path, kw), count in _plan_send(calls):
                ids += _ids(self._client.request(method, path, **kw), count)
        return ids

    def send_workflows(self, calls: Sequence[Call]) -> list[list[Step]]:
        """Each call with what follows it as one ``POST /workflows``: its steps' ids."""
        return [_steps(self._workflow(workflow_json(call))["steps"]) for call in calls]

    def _workflow(self, body: dict[str, Any]) -> dict[str, Any]:
        with _unavailable():
            response = self._client.post("/workflows", json=body)
        _raise_for(response)
        answer: dict[str, Any] = response.json()
        return answer

    def send_group(self, calls: Sequence[Call]) -> tuple[str, list[list[Step]]]:
        """A group as one ``POST /workflows``: the gateway keeps it (as long as results),
        so its id restores it; each member's result run."""
        answer = self._workflow({"group": [workflow_json(c) for c in calls]})
        return str(answer["id"]), [[Step(str(m))] for m in answer["members"]]

    def put_http_task(self, name: str, spec: HttpTaskSpec) -> None:
        with _unavailable():
            response = self._client.put(
                f"/tasks/{quote(name, safe='')}", json=msgspec.to_builtins(spec)
            )
        _raise_for(response)

    def delete_http_task(self, name: str) -> bool:
        with _unavailable():
            response = self._client.delete(f"/tasks/{quote(name, safe='')}")
        if response.status_code == 404:
            return False
        _raise_for(response)
        return True

    def save_group(self, group_id: str, run_ids: Sequence[str]) -> None:
        """Nothing to write: the gateway kept the group it was sent; anything else it
        cannot keep (no such route)."""
        if self.restore_group(group_id) != list(run_ids):
            raise InvalidRequest(_NO_SAVED_GROUPS)

    def restore_group(self, group_id: str) -> list[str] | None:
        run = self.run(group_id)
        if run is None or run.get("kind") != "group":
            return None
        return [str(m) for m in run.get("members") or []]

    def run(self, run_id: str) -> RunJSON | None:
        with _unavailable():
            return _run(self._client.get(f"/runs/{quote(run_id, safe='')}"))

    def runs(self, run_ids: Sequence[str]) -> list[RunJSON | None]:
        return [self.run(i) for i in run_ids]  # one request each, on one connection

    def wait(self, run_id: str, timeout: float) -> RunJSON | None:
        with _unavailable():
            return _run(
                self._client.get(
                    f"/runs/{quote(run_id, safe='')}",
                    params={"wait": min(max(timeout, 0), MAX_WAIT)},
                )
            )

    async def send_async(self, calls: Sequence[Call]) -> list[str]:
        ids: list[str] = []
        with _unavailable():
            for (method, path, kw), count in _plan_send(calls):
                ids += _ids(await self._async.request(method, path, **kw), count)
        return ids

    async def run_async(self, run_id: str) -> RunJSON | None:
        with _unavailable():
            return _run(await self._async.get(f"/runs/{quote(run_id, safe='')}"))

    async def wait_async(self, run_id: str, timeout: float) -> RunJSON | None:
        with _unavailable():
            return _run(
                await self._async.get(
                    f"/runs/{quote(run_id, safe='')}",
                    params={"wait": min(max(timeout, 0), MAX_WAIT)},
                )
            )

    def revoke(self, run_id: str, terminate: bool) -> None:
        with _unavailable():
            _raise_for(
                self._client.post(
                    f"/runs/{quote(run_id, safe='')}/revoke", json={"terminate": terminate}
                )
            )

    async def revoke_async(self, run_id: str, terminate: bool) -> None:
        with _unavailable():
            _raise_for(
                await self._async.post(
                    f"/runs/{quote(run_id, safe='')}/revoke", json={"terminate": terminate}
                )
            )

    def close(self) -> None:
        self._client.close()
