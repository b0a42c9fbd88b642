"""Only ``sdk/protocol`` speaks Lua and spells keys: everything else goes through it.

Each module outside the package is parsed (its code, not its comments or docstrings) and
fails on any of:

- importing ``sdk.protocol.lua`` (the scripts themselves);
- ``register_script``, ``eval``/``evalsha``/``script_load``, or indexing a ``scripts[...]``;
- a string naming ``EVAL``/``EVALSHA``, or holding Lua (``redis.call(``);
- a string with a hand-spelled key piece (``":run:"``, ``":q:"``, ``":events"``, ...).

``sdk/pipelining.py`` is the transport the drivers send scripts through: it may import
``Lua``, send ``EVALSHA`` and load a script the server forgot, and nothing else.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sdk", "gateway", "executors", "loadtests")
PROTOCOL = ROOT / "sdk" / "protocol"
TRANSPORT = ROOT / "sdk" / "pipelining.py"
TRANSPORT_RULES = frozenset({"imports the scripts", "calls script_load", "names EVAL"})

SCRIPT_CALLS = frozenset({"register_script", "eval", "evalsha", "script_load"})
EVAL_COMMAND = re.compile(r"^\s*EVAL(SHA)?(_RO)?\s*$|\bEVALSHA\b", re.IGNORECASE)
KEY_PIECE = re.compile(
    r":(run|q|idem|done|rate|worker|webhook):"
    r"|:(events|delayed|dead|runs|revoked|queues|webhooks|tasks|workers|control)\b"
    r"|\{(q|sched)[:}]|\bceleriac:"
)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string nodes that are docstrings (prose, not code)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _imports_lua(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.startswith("sdk.protocol.lua") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if module.startswith("sdk.protocol.lua"):
            return True
        return module == "sdk.protocol" and any(a.name == "lua" for a in node.names)
    return False


def _string_rule(text: str) -> str | None:
    if EVAL_COMMAND.search(text):
        return "names EVAL"
    if "redis.call(" in text or "redis.pcall(" in text:
        return "holds Lua"
    if KEY_PIECE.search(text):
        return "spells a key"
    return None


def violations(path: Path) -> Iterator[tuple[int, str]]:
    """(line, rule) for each breach of the boundary in one module."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if _imports_lua(node):
            yield line, "imports the scripts"
        elif isinstance(node, ast.Attribute) and node.attr in SCRIPT_CALLS:
            yield line, f"calls {node.attr}"
        elif isinstance(node, ast.Subscript) and _name(node.value) == "scripts":
            yield line, "indexes scripts[...]"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and (rule := _string_rule(node.value))
        ):
            yield line, rule


def modules(package: str) -> list[Path]:
    return sorted(
        p for p in (ROOT / package).rglob("*.py") if PROTOCOL not in p.parents and p != PROTOCOL
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_protocol_package_speaks_lua_and_spells_keys(package: str) -> None:
    paths = modules(package)
    assert paths, f"no modules found under {package}/"
    found = [
        f"{path.relative_to(ROOT)}:{line}: {rule}"
        for path in paths
        for line, rule in violations(path)
        if not (path == TRANSPORT and rule in TRANSPORT_RULES)
    ]
    assert not found, "outside sdk/protocol:\n" + "\n".join(found)


def test_the_rule_catches_what_it_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""A docstring may say EVALSHA and celeriac:run:x."""\n'
        "from sdk.protocol import lua\n"
        "script = client.register_script(SOURCE)\n"
        'broker.scripts["submit"](keys=[], args=[])\n'
        'client.execute_command("EVALSHA", sha, 0)\n'
        'key = f"{prefix}:{{0}}:run:{run_id}"\n'
        "SOURCE = \"return redis.call('GET', KEYS[1])\"\n"
        "# a comment may say ':events' too\n"
    )
    assert sorted(violations(bad)) == [
        (2, "imports the scripts"),
        (3, "calls register_script"),
        (4, "indexes scripts[...]"),
        (5, "names EVAL"),
        (6, "spells a key"),
        (7, "holds Lua"),
    ]
