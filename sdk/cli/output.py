"""How commands print: aligned tables and fields for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click


def value_text(value: Any) -> str:
    """A value as JSON where it can be, else its repr (e.g. a pickled object's)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    grid = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in grid
    ]
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """``name  value`` lines, names padded to one width."""
    items = list(pairs)
    width = max((len(name) for name, _ in items), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in items)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=repr))


def one_line(message: str) -> str:
    """Collapse a multi-line message, so an error stays on one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())
