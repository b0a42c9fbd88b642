"""Samples of every repeat, and their medians: what the table and the JSON report show."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]  # metric, system, variant (pool, round-trip path, scenario...)


class Results:
    def __init__(self) -> None:
        self.samples: dict[Key, list[float]] = defaultdict(list)
        self.details: list[dict[str, Any]] = []  # per-command breakdowns and the like

    def add(self, metric: str, system: str, variant: str, value: float) -> None:
        self.samples[(metric, system, variant)].append(value)

    def detail(self, **fields: Any) -> None:
        self.details.append(fields)

    def median(self, metric: str, system: str, variant: str) -> float | None:
        values = self.samples.get((metric, system, variant))
        return statistics.median(values) if values else None

    def variants(self, metric: str, system: str) -> list[str]:
        return [v for (m, s, v) in self.samples if m == metric and s == system]

    def best(
        self, metric: str, system: str, higher: bool = True, suffix: str = ""
    ) -> tuple[str, float] | None:
        """The variant (among those ending with ``suffix``) with the best median, and that."""
        variants = [v for v in self.variants(metric, system) if v.endswith(suffix)]
        found = [(v, self.median(metric, system, v)) for v in variants]
        scored = [(v, m) for v, m in found if m is not None]
        if not scored:
            return None
        return (max if higher else min)(scored, key=lambda vm: vm[1])

    def write_json(self, path: Path, config: dict[str, Any]) -> None:
        rows = [
            {
                "metric": m,
                "system": s,
                "variant": v,
                "median": statistics.median(values),
                "samples": values,
            }
            for (m, s, v), values in sorted(self.samples.items())
        ]
        doc = {"config": config, "results": rows, "details": self.details}
        path.write_text(json.dumps(doc, indent=2) + "\n")
