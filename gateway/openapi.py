"""The OpenAPI 3.1 description of the endpoints this gateway serves, written by hand."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.intake import MAX_BATCH, QUERY_OPTIONS
from gateway.responses import JSONResponse
from gateway.scheduler import openapi as schedules

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    why = {
        400: "malformed request",
        403: "pickle payload unsigned or badly signed",
        404: "unknown task or run",
        409: "conflict",
        413: "body too large",
        415: "unsupported content type",
        422: "arguments do not match the task's schema",
        503: "Redis unreachable (with Retry-After)",
    }
    return {str(s): _json(_ref("Error"), why[s]) for s in statuses}


_OPTIONS: Schema = {
    "queue": {"type": "string"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 9},
    "countdown": {"type": "number", "description": "seconds from now"},
    "eta": {"type": ["string", "number"], "description": "ISO 8601, or epoch seconds"},
    "expires": {"type": ["string", "number"], "description": "seconds from now, or ISO 8601"},
    "max_retries": {"type": "integer"},
    "callback_url": {"type": "string", "format": "uri"},
    "idempotency_key": {"type": "string"},
    "parent_id": {"type": "string"},
    "root_id": {"type": "string"},
    "ignore_result": {"type": "boolean"},
}

_CALLBACKS: Schema = {
    "oneOf": [_ref("Signature"), {"type": "array", "items": _ref("Signature")}],
}

_SIGNATURE: Schema = {
    "type": "object",
    "required": ["task"],
    "additionalProperties": False,
    "properties": {
        "task": {"type": "string"},
        "args": {"type": "array"},
        "kwargs": {"type": "object"},
        "options": {
            "type": "object",
            "properties": {
                **_OPTIONS,
                "link": {**_CALLBACKS, "description": "run with its result once it succeeds"},
                "link_error": {**_CALLBACKS, "description": "run with its id if it does not"},
            },
            "additionalProperties": False,
        },
        "immutable": {"type": "boolean", "description": "take no result from before it"},
    },
}


def _one_key(key: str, value: Schema) -> Schema:
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: value},
    }


def _list_of(*kinds: str) -> Schema:
    return {"type": "array", "minItems": 1, "items": {"oneOf": [_ref(k) for k in kinds]}}


SCHEMAS: dict[str, Schema] = {
    "HttpTask": {
        "type": "object",
        "required": ["target"],
        "additionalProperties": False,
        "properties": {
            "target": {
                "type": "object",
                "required": ["url"],
                "additionalProperties": False,
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "method": {"enum": ["POST", "PUT", "PATCH"], "default": "POST"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30},
                    "concurrency": {"type": "integer", "minimum": 1},
                },
            },
            "queue": {"type": "string"},
            "options": {
                "type": "object",
                "description": "task options: max_retries, retry_backoff, time_limit, "
                "rate_limit, priority, ...",
            },
            "parameters": {"type": "object", "description": "JSON Schema of the arguments"},
        },
    },
    "Signature": _SIGNATURE,
    "Chain": _one_key("chain", _list_of("Signature", "Group", "Chord")),
    "SignatureChain": _one_key("chain", _list_of("Signature")),
    "Group": _one_key("group", _list_of("Signature", "Chain", "Chord")),
    "Chord": _one_key(
        "chord",
        {
            "type": "object",
            "required": ["header", "body"],
            "properties": {
                "header": _list_of("Signature", "SignatureChain"),
                "body": {"oneOf": [_ref("Signature"), _ref("Chain")]},
            },
        },
    ),
    "Workflow": {
        "description": "a chain's steps run in turn, each given the result before it (a group "
        "followed by a signature is a chord of it); a group's side by side; a chord's body "
        "once, given the list of its header's results; a lone signature, with its callbacks",
        "oneOf": [_ref("Chain"), _ref("Group"), _ref("Chord"), _ref("Signature")],
    },
    "WorkflowAccepted": {
        "type": "object",
        "required": ["id", "kind", "members", "steps", "links"],
        "properties": {
            "id": {"type": "string", "description": "GET /runs/{id} shows the workflow"},
            "kind": {"enum": ["chain", "group", "chord", "task"]},
            "members": {"type": "array", "items": {"type": "string"}},
            "result_id": {
                "type": ["string", "null"],
                "description": "the run whose result is its own",
            },
            "steps": {
                "type": "array",
                "description": "each step's run id (a chord's body's, with its header's "
                "result ids); empty for a group",
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string"},
                        "header": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
            },
            "links": {"type": "object"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    },
    "SubmitBody": {
        "type": "object",
        "properties": {"args": {"type": "array"}, "kwargs": {"type": "object"}, **_OPTIONS},
    },
    "BatchBody": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": _ref("SubmitBody"),
            }
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "task", "state", "links"],
        "properties": {
            "id": {"type": "string"},
            "task": {"type": "string"},
            "state": {"enum": ["PENDING", "SCHEDULED"]},
            "links": {"type": "object", "properties": {"self": {"type": "string"}}},
        },
    },
    "BatchAccepted": {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
    },
    "Task": {
        "type": "object",
        "required": ["name", "queue", "parameters", "positional"],
        "properties": {
            "name": {"type": "string"},
            "queue": {"type": "string"},
            "options": {"type": "object"},
            "parameters": {"type": "object", "description": "JSON Schema of the arguments"},
            "positional": {"type": "array", "items": {"type": "string"}},
            "doc": {"type": ["string", "null"]},
            "workers": {"type": "integer"},
        },
    },
    "TaskList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref("Task")},
            "next": {"type": ["string", "null"]},
        },
    },
    "Run": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "task": {"type": "string"},
            "state": {"type": "string"},
            "result": {},
            "error": {
                "type": ["object", "null"],
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "traceback": {"type": ["string", "null"]},
                },
            },
            "attempts": {"type": "integer"},
            "queue": {"type": "string"},
            "worker": {"type": ["string", "null"]},
            **{
                k: {"type": ["string", "null"], "format": "date-time"}
                for k in ("created_at", "started_at", "finished_at")
            },
            "runtime_ms": {"type": ["integer", "null"]},
            "parent_id": {"type": ["string", "null"]},
            "root_id": {"type": ["string", "null"]},
            "meta": {},
            "webhook": {
                "type": ["object", "null"],
                "properties": {
                    "url": {"type": "string"},
                    "state": {"enum": ["pending", "delivered", "failed", "disabled"]},
                    "attempts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "at": {"type": "string", "format": "date-time"},
                                "status": {"type": ["integer", "null"]},
                                "latency_ms": {"type": "integer"},
                                "error": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
            },
        },
    },
    "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
}

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_SUBMIT_BODY = {
    "required": False,
    "content": {
        "application/json": {"schema": _ref("SubmitBody")},
        "application/msgpack": {"schema": _ref("SubmitBody")},
        "application/x-cloudpickle": {
            "schema": {
                "type": "string",
                "contentMediaType": "application/x-cloudpickle",
                "description": "pickled {args, kwargs}; needs X-Celeriac-Signature "
                "(hex HMAC-SHA256 of the body); options come from the query string",
            }
        },
    },
}
_HEADERS = [
    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
    {"name": "X-Callback-Url", "in": "header", "schema": {"type": "string"}},
    {"name": "X-Celeriac-Signature", "in": "header", "schema": {"type": "string"}},
]
_QUERY = [
    {"name": q, "in": "query", "schema": {"type": "string"}, "description": "pickle bodies only"}
    for q in QUERY_OPTIONS
]

PATHS: dict[str, Schema] = {
    "/tasks": {
        "get": {
            "summary": "The task catalog",
            "responses": {"200": _json(_ref("TaskList"), "every registered task"), **_errors(503)},
        }
    },
    "/tasks/{name}": {
        "parameters": [_NAME],
        "get": {
            "summary": "One catalog entry",
            "responses": {"200": _json(_ref("Task"), "the task"), **_errors(404, 503)},
        },
        "post": {
            "summary": "Submit one run",
            "parameters": _HEADERS + _QUERY,
            "requestBody": _SUBMIT_BODY,
            "responses": {
                "202": _json(_ref("Accepted"), "queued durably; Location names the run"),
                "200": _json(_ref("Accepted"), "a repeat of an idempotent submission"),
                **_errors(400, 403, 404, 409, 413, 415, 422, 503),
            },
        },
        "put": {
            "summary": "Register (or replace) a task with an HTTP target, run by --pool http",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("HttpTask")}},
            },
            "responses": {
                "201": _json(_ref("Task"), "registered; Location names it"),
                "200": _json(_ref("Task"), "replaced"),
                **_errors(400, 409, 415, 422, 503),
            },
        },
        "delete": {
            "summary": "Remove a task with an HTTP target",
            "responses": {"204": {"description": "removed"}, **_errors(404, 409, 503)},
        },
    },
    "/tasks/{name}/batch": {
        "parameters": [_NAME],
        "post": {
            "summary": "Submit many runs of one task; nothing is queued unless all are valid",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("BatchBody")},
                    "application/msgpack": {"schema": _ref("BatchBody")},
                },
            },
            "responses": {
                "202": _json(_ref("BatchAccepted"), "all queued durably"),
                **_errors(400, 404, 413, 415, 422, 503),
            },
        },
    },
    "/runs/{id}": {
        "get": {
            "summary": "A run; with ?wait=N, long-poll up to N seconds for a terminal state",
            "parameters": [
                _ID,
                {
                    "name": "wait",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 0, "maximum": 60},
                },
            ],
            "responses": {"200": _json(_ref("Run"), "the run"), **_errors(400, 404, 503)},
        }
    },
    "/workflows": {
        "post": {
            "summary": "Submit a chain, group or chord (nestable), or one signature with callbacks",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Workflow")}},
            },
            "responses": {
                "202": _json(_ref("WorkflowAccepted"), "every run queued; GET /runs/{id} shows it"),
                **_errors(400, 404, 409, 413, 415, 422, 503),
            },
        }
    },
    "/runs/{id}/retry": {
        "post": {
            "summary": "Submit a failed, revoked or dead run again, as a new run (its parent_id)",
            "parameters": [_ID],
            "responses": {
                "202": _json(_ref("Accepted"), "the new run, queued durably"),
                **_errors(404, 409, 503),
            },
        }
    },
    "/runs/{id}/revoke": {
        "post": {
            "summary": "Revoke a run: a queued one never starts; terminate stops a running one",
            "parameters": [_ID],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"terminate": {"type": "boolean", "default": False}},
                        }
                    }
                },
            },
            "responses": {
                "202": {
                    "description": "revoked (or being terminated); of a workflow id, every "
                    "run of it not finished, with each run's outcome in `runs`"
                },
                **_errors(400, 404, 409, 503),
            },
        }
    },
    "/runs": {
        "get": {
            "summary": "Recent runs, newest first, over the bounded history (docs/results.md)",
            "parameters": [
                {"name": "task", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "state",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "one state or a comma-separated list",
                },
                {"name": "queue", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ref("Run")},
                            "next": {"type": ["string", "null"]},
                        },
                    },
                    "a page of runs; follow next until it is null",
                ),
                **_errors(400, 503),
            },
        }
    },
    "/events": {
        "get": {
            "summary": "Server-Sent Events of runs (event: run) and workers (event: worker)",
            "parameters": [
                {"name": "task", "in": "query", "schema": {"type": "string"}},
                {"name": "run", "in": "query", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "schema": {"enum": ["run", "worker"]}},
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "resume after this position (an SSE id received before)",
                },
            ],
            "responses": {
                "200": {
                    "description": (
                        "an endless text/event-stream; id: is the position in every "
                        "partition's events stream (one partition: the stream entry id)"
                    ),
                    "content": {"text/event-stream": {}},
                },
                **_errors(400),
            },
        }
    },
    "/dead-letters": {
        "get": {
            "summary": "Runs that exhausted their deliveries (state DEAD), newest first",
            "parameters": [
                {"name": "queue", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "{items: [run], next: cursor|null}"},
                **_errors(400, 503),
            },
        }
    },
    "/dead-letters/{id}/requeue": {
        "post": {
            "summary": "Put a dead run back on its queue for a fresh round of deliveries",
            "parameters": [_ID],
            "responses": {"202": {"description": "queued again"}, **_errors(404, 409, 503)},
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "responses": {"200": _json(_ref("Status"), "the process answers")},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Redis answers PING",
            "responses": {"200": _json(_ref("Status"), "ready"), **_errors(503)},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    },
}


def document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Celeriac gateway", "version": "0.1.0"},
        "paths": {**PATHS, **schedules.PATHS},
        "components": {"schemas": {**SCHEMAS, **schedules.SCHEMAS}},
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
