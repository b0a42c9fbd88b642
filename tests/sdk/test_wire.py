"""The wire pieces on their own: ids, times, codecs, signatures, schemas, exceptions."""

from __future__ import annotations

import base64
import re
from typing import Any

import cloudpickle
import pytest

from sdk import TaskError
from sdk import protocol as p
from sdk.errors import ProtocolError, SignatureError, UnknownProtocolVersion, UnsupportedContentType
from sdk.exceptions_wire import describe, rebuild
from sdk.schema import describe as schema_of
from sdk.serializers import Codec
from sdk.signing import Signer


def test_ids_are_uuid7_and_sort_by_time() -> None:
    ids = [p.new_id() for _ in range(100)]
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )
    assert len(set(ids)) == 100
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert p.rfc3339(1795276090123) == "2026-11-21T15:48:10.123Z"
    assert p.parse_time("2026-11-21T15:48:10.123Z") == 1795276090123
    assert p.parse_time("2026-11-21T23:48:10.123+08:00") == 1795276090123


def test_envelope_round_trips_and_rejects_other_versions() -> None:
    m = p.Message(id="1", task="t", eta=5)
    assert p.decode_envelope(p.encode_envelope(m)) == m
    with pytest.raises(UnknownProtocolVersion):
        p.decode_envelope(b'{"id": "1", "task": "t", "v": 2}')
    with pytest.raises(ProtocolError):
        p.decode_envelope(b"not json")


@pytest.mark.parametrize("ct", ["json", "msgpack", "application/json; charset=utf-8"])
def test_plain_codecs_round_trip(ct: str) -> None:
    codec = Codec()
    data, sig = codec.encode({"args": [1, "x"], "kwargs": {"k": None}}, ct)
    assert sig is None
    assert codec.decode(data, ct) == {"args": [1, "x"], "kwargs": {"k": None}}


def test_pickle_needs_a_key_and_a_valid_signature() -> None:
    with pytest.raises(SignatureError):
        Codec().encode(1, "pickle")
    codec = Codec(Signer("k"))
    data, sig = codec.encode({1, 2}, "pickle")
    assert codec.decode(data, "pickle", sig) == {1, 2}
    for bad in (None, "", "ab" * 32, Signer("other").sign(data)):
        with pytest.raises(SignatureError):
            codec.decode(data, "pickle", bad)
    with pytest.raises(SignatureError):
        Codec().decode(data, "pickle", sig)  # a reader without the key refuses too


def test_unknown_content_type() -> None:
    with pytest.raises(UnsupportedContentType):
        Codec().encode(1, "text/csv")


def test_schema_from_type_hints() -> None:
    def fn(
        x: int,
        y: list[str],
        z: float = 1.5,
        *,
        flag: bool = False,
        anything: Any = None,
        **extra: Any,
    ) -> None: ...

    schema, positional = schema_of(fn)
    assert positional == ["x", "y", "z"]
    assert schema["required"] == ["x", "y"]
    assert schema["properties"]["y"] == {"type": "array", "items": {"type": "string"}}
    assert schema["properties"]["z"] == {"type": "number", "default": 1.5}
    assert schema["properties"]["anything"] == {"default": None}
    assert schema["additionalProperties"] is True


class Unbuildable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(a, b)


def test_exceptions_rebuild_by_name_or_fall_back_to_task_error() -> None:
    codec = Codec()
    try:
        raise ValueError("v")
    except ValueError as exc:
        error = describe(exc)
    assert error["type"] == "ValueError"
    rebuilt = rebuild(error, codec)
    assert type(rebuilt) is ValueError and str(rebuilt) == "v"
    assert "raise ValueError" in rebuilt.__notes__[0]

    unknown = rebuild({"type": "nowhere.Missing", "message": "m", "traceback": "tb"}, codec)
    assert isinstance(unknown, TaskError) and unknown.traceback == "tb"
    assert unknown.type == "nowhere.Missing"
    odd = rebuild(describe(Unbuildable(1, 2)), codec)
    assert isinstance(odd, TaskError)


def test_signed_pickled_exception_is_rebuilt_exactly() -> None:
    codec = Codec(Signer("k"))
    exc = Unbuildable(1, 2)
    data, sig = codec.encode(exc, "pickle")
    encoded = {
        "content_type": "application/x-cloudpickle",
        "data": base64.b64encode(data).decode(),
        "signature": sig,
    }
    rebuilt = rebuild({**describe(exc), "encoded": encoded}, codec)
    assert type(rebuilt) is Unbuildable and rebuilt.args == (1, 2)
    tampered = {**encoded, "data": base64.b64encode(cloudpickle.dumps(ValueError())).decode()}
    assert isinstance(rebuild({**describe(exc), "encoded": tampered}, codec), TaskError)


def test_eviction_warning_only_when_keys_can_be_evicted() -> None:
    from sdk.hygiene import eviction_warning

    assert eviction_warning({b"maxmemory": b"0", b"maxmemory-policy": b"allkeys-lru"}) is None
    assert eviction_warning({"maxmemory": "100mb", "maxmemory-policy": "noeviction"}) is None
    warning = eviction_warning({b"maxmemory": b"1000", b"maxmemory-policy": b"volatile-lru"})
    assert warning is not None and "volatile-lru" in warning
