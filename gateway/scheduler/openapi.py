"""The OpenAPI description of ``/schedules``, merged into gateway/openapi.py's document."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_TIME = {"type": ["string", "null"], "format": "date-time"}
_EDGES = {"start_at": {"type": "string", "format": "date-time"}, "end_at": _TIME}
_UNITS = {u: {"type": "number", "exclusiveMinimum": 0} for u in ("seconds", "minutes", "hours")}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


_TRIGGER: Schema = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"const": "interval"},
                **_UNITS,
                "days": {"type": "number"},
                "weeks": {"type": "number"},
                **_EDGES,
            },
        },
        {
            "type": "object",
            "required": ["type", "expr"],
            "properties": {
                "type": {"const": "cron"},
                "expr": {"type": "string", "description": "5 fields; 0 and 7 are Sunday"},
                "timezone": {"type": "string", "description": "IANA; default: the setting"},
                **_EDGES,
            },
        },
        {
            "type": "object",
            "required": ["type", "run_at"],
            "properties": {"type": {"const": "date"}, "run_at": {"type": "string"}},
        },
    ]
}

_WRITABLE: Schema = {
    "id": {"type": "string"},
    "task": {"type": "string"},
    "args": {"type": "array"},
    "kwargs": {"type": "object"},
    "queue": {"type": ["string", "null"]},
    "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 9},
    "expires": {"type": ["number", "null"], "description": "seconds after the fire time"},
    "trigger": _ref("Trigger"),
    "enabled": {"type": "boolean", "default": True},
    "jitter": {"type": ["number", "null"], "description": "delay each run by up to this (s)"},
    "misfire_grace_time": {"type": ["number", "null"], "default": 30},
    "coalesce": {"type": "boolean", "default": False},
    "max_instances": {"type": ["integer", "null"], "minimum": 1, "maximum": 10},
}

SCHEMAS: dict[str, Schema] = {
    "Trigger": _TRIGGER,
    "ScheduleBody": {"type": "object", "required": ["task", "trigger"], "properties": _WRITABLE},
    "Schedule": {
        "type": "object",
        "properties": {
            **_WRITABLE,
            "source": {"enum": ["api", "static"]},
            "app": {"type": ["string", "null"]},
            **{k: _TIME for k in ("created_at", "updated_at", "next_run_at", "last_run_at")},
            "last_run_id": {"type": ["string", "null"]},
            "recent_runs": {"type": "array", "items": {"type": "string"}},
            "links": {"type": "object"},
        },
    },
    "ScheduleList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("Schedule")},
            "next": {"type": ["string", "null"]},
        },
    },
}

_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_BODY = {"required": True, "content": {"application/json": {"schema": _ref("ScheduleBody")}}}
_ONE = _json(_ref("Schedule"), "the schedule")
_BAD = {"400": _error("malformed JSON"), "422": _error("invalid schedule, with the reason")}
_404 = {"404": _error("unknown schedule")}


def _action(summary: str, ok: Schema, code: str = "200") -> Schema:
    return {"parameters": _ID, "post": {"summary": summary, "responses": {code: ok, **_404}}}


PATHS: dict[str, Schema] = {
    "/schedules": {
        "get": {
            "summary": "Every schedule, with next_run_at, last_run_at and last_run_id",
            "responses": {"200": _json(_ref("ScheduleList"), "the schedules")},
        },
        "post": {
            "summary": "Create a schedule (takes effect within a second)",
            "requestBody": _BODY,
            "responses": {"201": _ONE, **_BAD, "409": _error("the id is taken")},
        },
    },
    "/schedules/{id}": {
        "parameters": _ID,
        "get": {"summary": "One schedule", "responses": {"200": _ONE, **_404}},
        "patch": {
            "summary": "Change a schedule: the fields given replace the stored ones",
            "requestBody": _BODY,
            "responses": {"200": _ONE, **_BAD, **_404},
        },
        "delete": {"summary": "Delete", "responses": {"204": {"description": "gone"}, **_404}},
    },
    "/schedules/{id}/pause": _action("Pause (no catch-up on resume)", _ONE),
    "/schedules/{id}/resume": _action("Resume", _ONE),
    "/schedules/{id}/run": _action(
        "Run now, outside the schedule", _json(_ref("Accepted"), "queued"), "202"
    ),
}
