"""The report: medians of every repeat as Markdown tables, Celeriac against each peer.

A ratio is always Celeriac ÷ peer; the last column says which way is better, so a rate
ratio above 1 and a latency, memory or command ratio below 1 both favour Celeriac.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from loadtests.results import Results

SYSTEMS = ("celeriac", "celery", "dramatiq")
PEERS = ("celery", "dramatiq")
BEST = "*best*"
HEADER = ["measure", "Celeriac", "Celery", "Dramatiq", "C÷Celery", "C÷Dramatiq", "better"]


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    variants: dict[str, str]  # system -> variant; "*best* | kind": its best one of that kind
    unit: str  # "rate", "ms", "MB", "count"
    higher: bool


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value:,.0f}"
    if unit == "count":
        return f"{value:.2f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _value(results: Results, row: Row, system: str) -> float | None:
    variant = row.variants.get(system)
    if variant is None:
        return None
    if variant.startswith(BEST):
        best = results.best(row.metric, system, row.higher, variant.removeprefix(BEST))
        return best[1] if best else None
    return results.median(row.metric, system, variant)


def render(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in
                                          enumerate(widths)) + "|")  # fmt: skip
    return "\n".join(lines)


def comparison(results: Results, rows: Sequence[Row]) -> str:
    out: list[list[str]] = [HEADER]
    for row in rows:
        values = {s: _value(results, row, s) for s in SYSTEMS}
        if all(v is None for v in values.values()):
            continue
        ratios = []
        for peer in PEERS:
            mine, theirs = values["celeriac"], values[peer]
            ok = mine is not None and theirs
            ratios.append(f"{mine / theirs:.2f}" if ok else "—")  # type: ignore[operator]
        cells = [fmt(values[s], row.unit) for s in SYSTEMS]
        out.append([row.label, *cells, *ratios, "higher" if row.higher else "lower"])
    return render(out) if len(out) > 1 else ""


def peer_rows(results: Results, kinds: Sequence[str], pools: dict[str, list[str]]) -> list[Row]:
    """Every comparison row, in the order of the issue: enqueue, drain, latency, memory,
    Redis commands. Rows with no figure for anyone are left out when printing."""
    return [
        *_enqueue_rows(kinds),
        *_drain_rows(kinds, pools),
        *_latency_rows(results, kinds),
        *_memory_rows(pools, kinds[0]),
        *_command_rows(pools, kinds[0]),
    ]


def _all(variant: str) -> dict[str, str]:
    return dict.fromkeys(SYSTEMS, variant)


def _labels(pools: dict[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(p for ps in pools.values() for p in ps))


def _enqueue_rows(kinds: Sequence[str]) -> Iterator[Row]:
    for kind in kinds:
        yield Row(f"enqueue one at a time, {kind} (runs/s)", "enqueue/s", _all(kind), "rate", True)
    for kind in kinds:
        only = {"celeriac": kind}
        yield Row(
            f"enqueue, batches of 100, {kind} (runs/s)", "enqueue batch/s", only, "rate", True
        )


def _drain_rows(kinds: Sequence[str], pools: dict[str, list[str]]) -> Iterator[Row]:
    for kind in kinds:
        for label in _labels(pools):
            has = {s: f"{label} | {kind}" for s, ps in pools.items() if label in ps}
            yield Row(f"drain {label}, {kind} (runs/s)", "drain/s", has, "rate", True)
        best = _all(f"{BEST} | {kind}")
        yield Row(f"drain, each one's best pool, {kind} (runs/s)", "drain/s", best, "rate", True)


def _latency_rows(results: Results, kinds: Sequence[str]) -> Iterator[Row]:
    """One row per Celeriac path; Celery and Dramatiq have one path each, on every row."""
    for kind in kinds:
        for path in ("SDK direct", "SDK via gateway", "raw HTTP"):
            for q in ("p50", "p99"):
                variants = {"celeriac": f"{path} | {kind}"}
                for peer in PEERS:
                    theirs = [v for v in results.variants(f"{q} ms", peer) if v.endswith(kind)]
                    if theirs:
                        variants[peer] = theirs[0]
                label = f"round trip {q}, Celeriac {path}, {kind} (ms)"
                yield Row(label, f"{q} ms", variants, "ms", False)


def _memory_rows(pools: dict[str, list[str]], kind: str) -> Iterator[Row]:
    for label in _labels(pools):
        has = {s: f"{label} | {kind}" for s, ps in pools.items() if label in ps}
        yield Row(f"worker tree RSS after drain, {label}, {kind} (MB)", "rss MB", has, "MB", False)
    for label in _labels(pools):  # PSS counts a page shared by prefork processes once
        has = {s: f"{label} | {kind}" for s, ps in pools.items() if label in ps}
        yield Row(f"worker tree PSS after drain, {label}, {kind} (MB)", "pss MB", has, "MB", False)


def _command_rows(pools: dict[str, list[str]], kind: str) -> Iterator[Row]:
    usual = {s: f"{ps[0]} | {kind}" for s, ps in pools.items() if ps}
    same = _all(kind)
    label = f"Redis cmds/run, {{}}, {kind}"
    yield Row(label.format("producer, incl. in Lua"), "producer cmds/run", same, "count", False)
    yield Row(label.format("producer, top-level"), "producer top-level/run", same, "count", False)
    yield Row(label.format("worker, incl. in Lua"), "worker cmds/run", usual, "count", False)
    yield Row(label.format("worker, top-level"), "worker top-level/run", same, "count", False)


HTTP_HEADER = ["scenario", "req/s", "runs/s", "p50 ms", "p99 ms", "non-2xx", "% of ceiling"]


def http(results: Results) -> str:
    """The gateway under wrk; its single POST as a share of the ceiling's."""
    out: list[list[str]] = [HTTP_HEADER]
    ceiling = results.median("http req/s", "ceiling", "202 + one XADD")
    for system in ("ceiling", "celeriac"):
        for scenario in dict.fromkeys(results.variants("http req/s", system)):
            rate = results.median("http req/s", system, scenario)
            share = "—"
            if system == "celeriac" and scenario.startswith("POST /tasks/{name}") and ceiling:
                share = f"{100 * (rate or 0) / ceiling:.0f}% of +XADD"
                bare = results.median("http req/s", "ceiling", "202, no Redis")
                share += f", {100 * (rate or 0) / bare:.0f}% of bare" if bare else ""
            name = ("ceiling: " if system == "ceiling" else "gateway: ") + scenario
            out.append([
                name,
                fmt(rate, "rate"),
                fmt(results.median("http runs/s", system, scenario), "rate"),
                fmt(results.median("http p50 ms", system, scenario), "ms"),
                fmt(results.median("http p99 ms", system, scenario), "ms"),
                fmt(results.median("http non-2xx", system, scenario), "rate"),
                share,
            ])  # fmt: skip
    return render(out) if len(out) > 1 else ""
