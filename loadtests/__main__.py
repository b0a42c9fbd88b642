"""``python -m loadtests COMMAND``: the benchmarks of docs/benchmarks.md.

    python -m loadtests bench [--quick] [--runs N] [--repeat 3] [--only enqueue,drain,...]
    python -m loadtests longpoll [--clients 2000 ...]
    python -m loadtests scheduler-lateness [--schedules 1000 ...]
    python -m loadtests cluster-drain [--runs 20000 --queues 6 ...]
    python -m loadtests canvas [--members 10000 --repeat 3 --pool "threads -c 8"]
    python -m loadtests http [--runs 5000 --repeat 3]

Each command takes --help.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "bench": "loadtests.bench",
    "longpoll": "loadtests.longpoll",
    "scheduler-lateness": "loadtests.scheduler_lateness",
    "cluster-drain": "loadtests.cluster_drain",
    "canvas": "loadtests.canvas",
    "http": "loadtests.http_pool",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    name, argv = sys.argv[1], sys.argv[2:]
    module = importlib.import_module(COMMANDS[name])
    if name == "bench":
        return int(module.main(argv))
    sys.argv = [f"python -m loadtests {name}", *argv]  # these parse sys.argv themselves
    module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
