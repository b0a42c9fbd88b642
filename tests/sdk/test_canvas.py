"""Signatures and chains as values: arguments, options, JSON, and chains run eagerly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sdk import App, Chain, Signature, chain, chord, group, signature
from sdk.errors import ConfigurationError, InvalidRequest


@pytest.fixture
def app() -> Iterator[App]:
    app = App("canvas", redis_url="redis://127.0.0.1:1/0")  # never reached: eager or unsent
    app.conf.task_always_eager = True

    @app.task(name="c.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="c.mul", queue="math", priority=3)
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="c.total")
    def total(values: list[int], extra: int = 0) -> int:
        return sum(values) + extra

    @app.task(name="c.fail")
    def fail(x: int) -> int:
        raise ValueError(f"no {x}")

    yield app
    app.close()


def test_s_keeps_arguments_and_calls_here_with_partial_arguments_in_front(app: App) -> None:
    add = app.tasks["c.add"]
    sig = add.s(2)
    assert isinstance(sig, Signature) and sig.task == "c.add" and sig.args == (2,)
    assert sig(5) == 7  # Celery: calling a signature runs the task in this process
    assert repr(add.s(2, y=3)) == "c.add(2, y=3)"


def test_si_is_immutable_clone_and_set(app: App) -> None:
    add = app.tasks["c.add"]
    frozen = add.si(1, 2)
    assert frozen.clone((10,)).args == (1, 2)  # immutable: takes no result
    sig = add.s(2).set(countdown=5, queue="q2")
    assert sig.options == {"countdown": 5, "queue": "q2"}
    copy = sig.clone((1,), priority=9)
    assert copy.args == (1, 2) and copy.options == {"countdown": 5, "queue": "q2", "priority": 9}
    assert sig.options == {"countdown": 5, "queue": "q2"}  # the clone is a copy


def test_json_form_round_trips(app: App) -> None:
    sig = app.tasks["c.add"].si(1, 2).set(queue="q")
    data = sig.to_dict()
    assert data == {"task": "c.add", "args": [1, 2], "options": {"queue": "q"}, "immutable": True}
    assert signature(data, app=app) == sig
    assert signature("c.add", (1, 2), {}, {"queue": "q"}, immutable=True, app=app) == sig


def test_a_bad_json_form_is_a_clear_error(app: App) -> None:
    with pytest.raises(InvalidRequest, match="not a signature"):
        signature({"args": [1]}, app=app)  # no task
    with pytest.raises(InvalidRequest, match="no app"):
        signature("c.add", (1, 2)).delay()


def test_the_task_defaults_apply_under_the_signature_options(app: App) -> None:
    call = app.tasks["c.mul"].s(2, 3).set(priority=8).to_call()
    assert call.options.queue == "math" and call.options.priority == 8


def test_unknown_options_are_refused(app: App) -> None:
    with pytest.raises(TypeError, match="unknown apply_async option"):
        app.tasks["c.add"].s(1, 2).set(colour="red").to_call()
    with pytest.raises(TypeError, match="unknown apply_async option"):
        signature("elsewhere.task", (1,), options={"colour": "red"}, app=app).to_call()


def test_pipes_flatten_into_one_chain(app: App) -> None:
    add, mul = app.tasks["c.add"], app.tasks["c.mul"]
    c = add.s(1, 1) | (mul.s(2) | add.s(3)) | chain(mul.s(4))
    assert isinstance(c, Chain) and [s.name for s in c.links] == [
        "c.add",
        "c.mul",
        "c.add",
        "c.mul",
    ]
    assert chain([add.s(1, 1), mul.s(2)]).links == chain(add.s(1, 1), mul.s(2)).links
    with pytest.raises(TypeError, match="links signatures"):
        chain(add.s(1, 1), 5)  # type: ignore[arg-type]
    assert c.to_dict()["chain"][1] == {"task": "c.mul", "args": [2]}


def test_an_eager_chain_passes_each_result_on_and_links_parents(app: App) -> None:
    add, mul = app.tasks["c.add"], app.tasks["c.mul"]
    result = (add.s(2, 2) | mul.s(10) | add.si(1, 1) | mul.s(3))()
    assert result.get() == 6
    assert result.parent is not None and result.parent.get() == 2
    assert result.parent.parent is not None and result.parent.parent.get() == 40


def test_an_eager_chain_stops_at_a_failure(app: App) -> None:
    add, fail = app.tasks["c.add"], app.tasks["c.fail"]
    with pytest.raises(ValueError, match="no 2"):  # task_eager_propagates, as in Celery
        (add.s(1, 1) | fail.s() | add.s(1)).apply_async()
    app.conf.task_eager_propagates = False
    result = (add.s(1, 1) | fail.s() | add.s(1)).apply_async()
    assert result.parent is not None and result.parent.get() == 2  # the third never ran
    with pytest.raises(ValueError, match="no 2"):
        result.get()


def test_a_periodic_task_takes_a_signature_and_refuses_a_chain(app: App) -> None:
    add = app.tasks["c.add"]
    name = app.add_periodic_task(10.0, add.s(1, 2).set(queue="q"), name="every-10s")
    [entry] = app.periodic_tasks
    assert name == "every-10s" and entry.task == "c.add"
    assert entry.args == (1, 2) and entry.options == {"queue": "q"}
    with pytest.raises(ConfigurationError, match="one signature, not"):
        app.add_periodic_task(10.0, add.s(1, 2) | add.s(3))
    with pytest.raises(ConfigurationError, match="one signature, not"):
        app.add_periodic_task(10.0, group(add.s(1, 2)))
    with pytest.raises(ConfigurationError, match="no link="):
        app.add_periodic_task(10.0, add.s(1, 2).on_error(add.s(0)))


def test_a_beat_schedule_entry_may_name_a_signature(app: App) -> None:
    from sdk.schedules import from_beat_schedule

    add = app.tasks["c.add"]
    beat = {
        "sig": {"task": add.s(1, 2).set(priority=7), "schedule": 5.0},
        "given": {"task": add.s(1, 2), "schedule": 5.0, "args": [3, 4], "options": {"queue": "q"}},
    }
    sig, given = from_beat_schedule(beat)
    assert (sig.task, sig.args, sig.options) == ("c.add", (1, 2), {"priority": 7})
    assert (given.args, given.options) == ((3, 4), {"queue": "q"})  # the entry's own win


def test_eager_groups_and_chords(app: App) -> None:
    add, mul = app.tasks["c.add"], app.tasks["c.mul"]
    assert group(add.s(i, i) for i in range(5))().get() == [0, 2, 4, 6, 8]
    assert group(add.s(1), mul.s(3))(2).get() == [3, 6]  # group args go in front of each
    result = chord([add.s(1, 1), add.s(2, 2)], app.tasks["c.total"].s(extra=10))()
    assert result.get() == 16 and result.parent is not None and result.parent.get() == [2, 4]


def test_json_forms_of_groups_and_chords(app: App) -> None:
    add = app.tasks["c.add"]
    assert group(add.s(1, 1), add.s(1) | add.s(2)).to_dict() == {
        "group": [
            {"task": "c.add", "args": [1, 1]},
            {"chain": [{"task": "c.add", "args": [1]}, {"task": "c.add", "args": [2]}]},
        ]
    }
    header = group(add.s(1, 1))
    assert (header | add.s(5)).to_dict() == {
        "chord": {
            "header": [{"task": "c.add", "args": [1, 1]}],
            "body": {"task": "c.add", "args": [5]},
        }
    }
    with pytest.raises(InvalidRequest, match="needs a body"):
        chord([add.s(1, 1)]).apply_async()
    with pytest.raises(InvalidRequest, match="header holds signatures and chains"):
        chord([chord([add.s(1, 1)], add.s(2))], add.s(1)).apply_async()


def test_links_ride_in_the_json_form(app: App) -> None:
    add = app.tasks["c.add"]
    sig = add.s(1, 1)
    callback = sig.link(add.s(10))
    assert sig.on_error(add.si(0, 0)) is sig and callback == add.s(10)
    data = sig.to_dict()
    assert data["options"] == {
        "link": [{"task": "c.add", "args": [10]}],
        "link_error": [{"task": "c.add", "args": [0, 0], "immutable": True}],
    }
    assert signature(data, app=app) == sig
    call = sig.to_call()
    assert [c.task for c in call.callbacks] == ["c.add"] and call.errbacks[0].immutable
    assert len((sig | add.s(1)).to_call().callbacks) == 1  # a first link keeps its own
    with pytest.raises(TypeError, match="take signatures"):
        add.apply_async((1, 1), link="c.add")


def test_map_starmap_and_chunks_run_eagerly(app: App) -> None:
    add, mul = app.tasks["c.add"], app.tasks["c.mul"]
    assert add.starmap([(1, 2), (3, 4)]).delay().get() == [3, 7]
    assert app.tasks["c.total"].map([[1, 2], [3]]).delay().get() == [3, 3]
    chunks = mul.chunks(zip(range(5), range(5), strict=True), 2)
    assert len(chunks.group()) == 3
    assert chunks().get() == [[0, 1], [4, 9], [16]]
    with pytest.raises(InvalidRequest, match="at least 1"):
        mul.chunks([(1, 2)], 0)


def test_links_run_eagerly_too(app: App) -> None:
    seen: list[object] = []

    @app.task(name="c.seen")
    def record(value: object) -> None:
        seen.append(value)

    add, fail = app.tasks["c.add"], app.tasks["c.fail"]
    add.apply_async((1, 2), link=record.s(), link_error=record.s())
    app.conf.task_eager_propagates = False
    failed = fail.s(1).on_error(record.s()).delay()
    assert seen == [3, failed.id]  # the result on success; the failed run's id on failure


def test_nested_forms_run_eagerly_as_on_workers(app: App) -> None:
    add, total = app.tasks["c.add"], app.tasks["c.total"]
    fan = group(add.s(i) for i in range(3))
    assert (add.s(1, 1) | fan | total.s() | add.s(1))().get() == 10  # [2, 3, 4] -> 9 -> 10
    ends = (add.s(1, 1) | fan)()
    assert ends.get() == [2, 3, 4] and ends.parent is not None and ends.parent.get() == 2
    header = [add.s(1, 1) | add.s(1), add.s(0, 0)]  # a chain in a chord's header
    assert chord(header, total.s())().get() == 3
    inner = chord([add.s(1), add.s(2)], total.s())
    assert (add.s(0, 1) | inner | add.s(1))().get() == 6


def test_a_chain_compiles_its_groups_to_chords(app: App) -> None:
    add, total = app.tasks["c.add"], app.tasks["c.total"]
    fan = group(add.s(i) for i in range(3))
    call = (add.s(1, 1) | fan | total.s() | fan).to_call()
    step, last = call.chain  # each group fused with the signature after it, if any
    assert step.task == "c.total" and [c.task for c in step.header] == ["c.add"] * 3
    assert last.task == "celeriac.collect" and len(last.header) == 3
    with pytest.raises(InvalidRequest, match="empty group"):
        (add.s(1, 1) | group()).to_call()


def test_a_chains_link_error_leaves_the_callers_signatures_alone(app: App) -> None:
    add, total = app.tasks["c.add"], app.tasks["c.total"]
    fan, body, after = group(add.s(1), add.s(2)), total.s(), add.s(1)
    result = (add.s(1, 1) | chord(fan, body) | after).apply_async(link_error=add.si(0, 0))
    assert result.get() == 8  # (1+1+1) + (1+1+2) + 1: [3, 4] -> 7 -> 8
    for sig in (*fan.members, body, after):
        assert isinstance(sig, Signature) and "link_error" not in sig.options
