"""Architecture rules from DESIGN.md, checked on the source tree.

* import-linter's contracts (pyproject.toml) hold.
* MQTT topics are known in ONE place: ``devices/protocol.py``.
* No ``eval``/``exec`` anywhere in the product code.
* SQL lives only in the SQLite store, ``edge/store/``.

Each scanner is also run against a small bad example, so that these tests stay
meaningful while the packages are still nearly empty.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("devices", "edge", "vision", "cloud_sync", "firmware_sim")
PROTOCOL = Path("devices/protocol.py")
TOPIC_ROOT = "storeedge/v1"
SQL_HOME = (Path("edge/store"), Path("cloud_sync/hq/db.py"), Path("cloud_sync/hq/sql"))  # HQ too
SQL_KEYWORDS = ("CREATE TABLE", "INSERT INTO", "SELECT ")

# A topic built from pieces: `/telemetry/`, `/event/`, `/cmd/` or a final `/birth`, `/state`.
TOPIC_PIECE = re.compile(r"/(?:telemetry|event|cmd)/|/(?:birth|state)\b")


def _files(*suffixes: str) -> Iterator[Path]:
    """Product source files, as paths relative to the repository root."""
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix in suffixes and path.is_file() and "__pycache__" not in path.parts:
                yield path.relative_to(ROOT)


def _parse(rel: Path) -> ast.Module:
    source = (ROOT / rel).read_text(encoding="utf-8")
    try:
        return ast.parse(source, filename=str(rel))
    except SyntaxError as exc:  # a broken file is a failure, not something to skip
        pytest.fail(f"{rel}: cannot be parsed: {exc}")


# --------------------------------------------------------------------------- import-linter


def test_import_contracts_hold() -> None:
    # import-linter 2.x has no `python -m importlinter` entry; call the console
    # script's function with this interpreter so that no PATH lookup is involved.
    cmd = [
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command(prog_name='lint-imports'))",
        "--no-cache",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"import-linter contracts are broken:\n{output}", pytrace=False)
    match = re.search(r"Contracts: (\d+) kept, (\d+) broken", output)
    assert match, f"unexpected import-linter output:\n{output}"
    assert int(match.group(1)) >= 1, output
    assert int(match.group(2)) == 0, output


# --------------------------------------------------------------------------- topics


def _topic_root_users(files: dict[Path, str]) -> list[str]:
    return [
        f"{rel}:{lineno}: {line.strip()}"
        for rel, text in files.items()
        if rel != PROTOCOL
        for lineno, line in enumerate(text.splitlines(), 1)
        if TOPIC_ROOT in line
    ]


def _built_topics(tree: ast.Module) -> list[tuple[int, str]]:
    """f-strings, `+`/`%` concatenations and `.format()` calls that build a topic."""
    found: list[tuple[int, str]] = []

    def literal(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(
                v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                for v in node.values
            )
        return None

    def check(node: ast.AST, text: str | None) -> None:
        # Topics never start with `/`; URL paths (FastAPI routes, links) do.
        if text and not text.startswith("/") and "://" not in text and TOPIC_PIECE.search(text):
            found.append((getattr(node, "lineno", 0), text))

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            check(node, literal(node))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            left, right = literal(node.left), literal(node.right)
            if left is not None or right is not None:
                # "{}" stands for the non-literal side, so `base + "/state"` reads "{}/state".
                check(node, (left if left is not None else "{}") + (right or "{}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            check(node, literal(node.func.value))
    return found


def test_topic_root_only_in_protocol() -> None:
    assert TOPIC_ROOT in (ROOT / PROTOCOL).read_text(encoding="utf-8"), (
        f"{PROTOCOL} should define the topic root {TOPIC_ROOT!r}; update this test if it moved"
    )
    files = {rel: (ROOT / rel).read_text(encoding="utf-8") for rel in _files(".py")}
    offenders = _topic_root_users(files)
    assert not offenders, (
        f"the topic root {TOPIC_ROOT!r} belongs in {PROTOCOL} only; use its topic "
        "functions instead:\n" + "\n".join(offenders)
    )


def test_topics_are_built_only_in_protocol() -> None:
    offenders = [
        f"{rel}:{lineno}: {text!r}"
        for rel in _files(".py")
        if rel != PROTOCOL
        for lineno, text in _built_topics(_parse(rel))
    ]
    assert not offenders, (
        f"MQTT topics are built in {PROTOCOL} only; use its topic functions:\n"
        + "\n".join(offenders)
    )


BAD_TOPICS = """
def a(base, store, dev, name):
    t1 = f"{base}/state"
    t2 = base + "/birth"
    t3 = f"x/{store}/{dev}/telemetry/weight"
    t4 = "%s/cmd/%s" % (base, name)
    t5 = "{}/event/gate".format(base)
    return t1, t2, t3, t4, t5
"""

GOOD_TOPICS = """
def b(device_id, base):
    route = f"/devices/{device_id}/state"     # a URL path, not a topic
    link = f"http://hq/{device_id}/cmd/x"     # a URL
    label = f"{device_id} statement"
    msg = "state"                              # a plain word, not a built topic
    return route, link, label, msg, base + "/stats"
"""


def test_topic_scanners_catch_violations() -> None:
    assert len(_built_topics(ast.parse(BAD_TOPICS))) == 5
    assert _built_topics(ast.parse(GOOD_TOPICS)) == []
    files = {Path("edge/x.py"): f'T = "{TOPIC_ROOT}/+/+/state"\n', PROTOCOL: TOPIC_ROOT}
    assert _topic_root_users(files) == [f'{Path("edge/x.py")}:1: T = "{TOPIC_ROOT}/+/+/state"']


# --------------------------------------------------------------------------- eval / exec


def _eval_exec_calls(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"eval", "exec"}:
            found.append((node.lineno, func.id))
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in {"eval", "exec"}
            and isinstance(func.value, ast.Name)
            and func.value.id in {"builtins", "__builtins__"}
        ):
            found.append((node.lineno, f"{func.value.id}.{func.attr}"))
    return found


def test_no_eval_or_exec() -> None:
    offenders = [
        f"{rel}:{lineno}: {name}()"
        for rel in _files(".py")
        for lineno, name in _eval_exec_calls(_parse(rel))
    ]
    assert not offenders, "eval/exec are not allowed in product code:\n" + "\n".join(offenders)


def test_eval_exec_scanner_catches_violations() -> None:
    bad = "import builtins\neval('1')\nexec('x = 1')\nbuiltins.eval('2')\n"
    assert [n for _, n in _eval_exec_calls(ast.parse(bad))] == ["eval", "exec", "builtins.eval"]
    good = "model.eval()\nasyncio.create_subprocess_exec('ls')\nevaluate(1)\n"
    assert _eval_exec_calls(ast.parse(good)) == []


# --------------------------------------------------------------------------- SQL


def _sql_outside_store(files: dict[Path, str]) -> list[str]:
    return [
        f"{rel}:{lineno}: {line.strip()}"
        for rel, text in files.items()
        if not any(rel.is_relative_to(home) for home in SQL_HOME)
        for lineno, line in enumerate(text.splitlines(), 1)
        if any(keyword in line for keyword in SQL_KEYWORDS)
    ]


def test_sql_only_in_store() -> None:
    files = {rel: (ROOT / rel).read_text(encoding="utf-8") for rel in _files(".py", ".sql")}
    offenders = _sql_outside_store(files)
    assert not offenders, (
        "SQL belongs in edge/store/ only; add a store method instead:\n" + "\n".join(offenders)
    )


def test_sql_scanner_catches_violations() -> None:
    files = {
        Path("edge/checkout/cart.py"): 'q = "SELECT * FROM carts"\n',
        Path("cloud_sync/sender.py"): "# INSERT INTO outbox\n",
        Path("edge/store/migrations/0001_init.sql"): "CREATE TABLE t (id INTEGER);\n",
        Path("edge/store/repo.py"): 'q = "SELECT 1"\n',
        Path("edge/checkout/select.py"): 'label = "Select a product"\n',
    }
    assert [o.split(":")[0] for o in _sql_outside_store(files)] == [
        str(Path("edge/checkout/cart.py")),
        str(Path("cloud_sync/sender.py")),
    ]
