"""Merging what is read a page at a time from several ordered sources (one per partition).

``GET /runs`` merges the partitions' history zsets, ``/events`` their events streams. Each
source holds what was read of it and not merged yet; ``merge`` takes entries in order for
as long as every source's next entry is known, so the caller reads on from the sources
it emptied and merges again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Source(Generic[T]):
    """One partition's entries: those read and not merged yet, and whether it is read
    to its end."""

    buffer: deque[T] = field(default_factory=deque)
    done: bool = False

    @property
    def wanting(self) -> bool:
        """Whether it must be read on before the next merge."""
        return not self.buffer and not self.done


def merge(
    sources: Sequence[Source[T]], limit: int, *, key: Callable[[T], Any], newest: bool
) -> list[T]:
    """Up to ``limit`` entries in order (``newest`` first, else oldest first), while every
    source's next entry is known: a source emptied before its end stops the merge, as its
    next unread entry may come before any other's."""
    pick = max if newest else min
    merged: list[T] = []
    while len(merged) < limit:
        held = [s for s in sources if s.buffer]
        if not held:
            break
        source = pick(held, key=lambda s: key(s.buffer[0]))
        merged.append(source.buffer.popleft())
        if source.wanting:
            break
    return merged
