"""The layers import only downward: models/ -> jobs/engine/ -> tune/ -> the commands in jobs/*.py; and inside
jobs/engine/ and tune/, the rooms (a folder per role) import only downward too, in the order ROOMS gives.

Read from the source itself (every import statement, function-level ones included), so a back-import planted
anywhere fails here; and no command imports ray before it has chosen the loopback address.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO as ROOT

# Lower number = lower layer. A module may import its own layer and the ones below it.
LAYERS = {"models": 0, "jobs.engine": 1, "tune": 2, "jobs": 3}
# Inside a layer, its rooms from lowest to highest ("" is the layer's own top level): a module may import its own
# room and the rooms before it. The order is the one each layer's __init__ docstring gives.
ROOMS = {"jobs.engine": ("", "data", "tasks", "measure", "train", "run", "bench"),
         "tune": ("", "sweep", "track", "analysis", "report")}
MAX_TOP_LEVEL_MODULES = 8  # per layer with rooms, __init__ included: more is a room missing
COMMANDS = ("jobs.train", "jobs.sweep", "jobs.report", "jobs.fetch_mnist", "jobs.bench", "jobs.bench_sweep",
            "jobs.bench_serving", "jobs.dashboard")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """The layer of one of our modules (longest matching prefix), None for a third-party module."""
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def room_of(module: str) -> tuple[str, int] | None:
    """(layer with rooms, the room's place in ROOMS[layer]) of one of our modules; None outside such a layer."""
    for layer, rooms in ROOMS.items():
        if module == layer or module.startswith(layer + "."):
            rest = module[len(layer) + 1:].split(".")
            room = rest[0] if rest[0] in rooms else ""  # a room's own __init__ is in the room
            return layer, rooms.index(room)
    return None


def is_module(name: str, root: Path = ROOT) -> bool:
    path = root / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(source: str | ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import in SOURCE (text or a parsed node), at any depth; relative imports
    resolved."""
    found = []
    for node in ast.walk(ast.parse(source) if isinstance(source, str) else source):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level]
                base = ".".join([*package, base] if base else package)
            # `from jobs.engine import config` imports jobs.engine.config: name the submodule when it is one.
            found += [(node.lineno, f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return found


def our_modules(root: Path = ROOT) -> dict[str, Path]:
    files = [*root.glob("models/**/*.py"), *root.glob("jobs/**/*.py"), *root.glob("tune/**/*.py")]
    return {module_name(path, root): path for path in files}


def violations(root: Path = ROOT) -> list[str]:
    """Every import of a higher layer, as `file:line: module (layer) imports other (layer)`, and of a later room of
    the same layer, as `file:line: module (room) imports other (room)`."""
    out = []
    for module, path in our_modules(root).items():
        own, own_room = layer_of(module), room_of(module)
        for line, imported in imports_of(path.read_text(), module):
            theirs, their_room = layer_of(imported), room_of(imported)
            if theirs is not None and own is not None and theirs > own:
                out.append(f"{path.relative_to(root)}:{line}: {module} (layer {own}) imports {imported} "
                           f"(layer {theirs})")
            elif own_room and their_room and own_room[0] == their_room[0] and their_room[1] > own_room[1]:
                rooms = ROOMS[own_room[0]]
                out.append(f"{path.relative_to(root)}:{line}: {module} (room {rooms[own_room[1]] or 'top'}) imports "
                           f"{imported} (room {rooms[their_room[1]]}, later in {own_room[0]})")
    return out


def cycles(root: Path = ROOT) -> list[list[str]]:
    """Import cycles among our modules (function-level imports included), each as the modules on it."""
    modules = our_modules(root)
    graph = {m: {i for _, i in imports_of(p.read_text(), m) if i in modules and i != m} for m, p in modules.items()}
    found, state = [], dict.fromkeys(graph, 0)  # 0 unseen, 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state[nxt] == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif state[nxt] == 0:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node, [node])
    return found


def test_no_module_imports_from_a_layer_above_it():
    assert violations() == []


def test_there_is_no_import_cycle():
    assert cycles() == []


def test_each_layer_with_rooms_keeps_few_modules_at_its_top_and_each_room_says_what_it_holds():
    for layer, rooms in ROOMS.items():
        folder = ROOT / Path(*layer.split("."))
        top = sorted(p.name for p in folder.glob("*.py"))
        assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{layer}: {top}: give the new module a room"
        found = {p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"}
        assert found == set(rooms) - {""}, (layer, found)
        for room in (r for r in rooms if r):
            doc = ast.get_docstring(ast.parse((folder / room / "__init__.py").read_text()))
            assert doc and len(doc.split()) >= 15, f"{layer}.{room}: its __init__ docstring says what the room holds"
        # The layer's docstring lists its rooms in the order the rule enforces.
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        places = [doc.find(f"`{room}/`") for room in rooms if room]
        assert -1 not in places and places == sorted(places), f"{layer}/__init__.py: list the rooms in ROOMS' order"


def test_jobs_holds_only_commands_and_the_engine():
    top = {p.name for p in (ROOT / "jobs").iterdir() if not p.name.startswith((".", "__pycache__"))}
    commands = {f"{c.split('.')[1]}.py" for c in COMMANDS}
    assert top == {"__init__.py", "engine", *commands}
    for command in commands:  # a command parses flags, calls the layers and prints: it has a main
        assert "def main(" in (ROOT / "jobs" / command).read_text()


def test_a_planted_back_import_is_found(tmp_path):
    for folder in ("models", "jobs/engine", "tune"):
        for path in (ROOT / folder).glob("**/*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "sweep.py").write_text("def main():\n    pass\n")
    assert violations(tmp_path) == [] and cycles(tmp_path) == []
    # Inside a function, as the ones that hide best are, and each kind of upward step.
    # Each kind of step: a layer up, and a room up inside the engine and inside tune/ (the sweep knowing the page).
    planted = {"models/cnn.py": "from jobs.engine.data.mnist import Mnist",
               "jobs/engine/train/loop.py": "import tune.sweep.presets",
               "tune/analysis/stats.py": "from jobs import sweep",
               "jobs/engine/data/mnist.py": "from jobs.engine.train import loop",
               "jobs/engine/errors.py": "from jobs.engine.run.cluster import connect",
               "tune/sweep/orchestration.py": "from tune.report import write"}
    for name, line in planted.items():
        path = tmp_path / name
        path.write_text(path.read_text() + f"\n\ndef planted():\n    {line}\n")
    found = violations(tmp_path)
    assert [v.split(":")[0] for v in found] == sorted(planted, key=list(planted).index) or \
        sorted(v.split(":")[0] for v in found) == sorted(planted)
    # And a cycle inside one layer: tune.analysis.stats <-> tune.analysis.comparison.
    (tmp_path / "tune" / "analysis" / "stats.py").write_text("import tune.analysis.comparison\n")
    assert any({"tune.analysis.stats", "tune.analysis.comparison"} <= set(c) for c in cycles(tmp_path))


def top_level_imports(module: str) -> list[str]:
    """What importing MODULE imports at once: its imports outside functions (and outside TYPE_CHECKING)."""
    path = our_modules().get(module)
    if path is None:
        return []
    tree = ast.parse(path.read_text())
    nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    found = [name for node in nodes for _, name in imports_of(node, module)]
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    return [parent for name in found for parent in parents(name)]


def parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.cache
def imports_ray(module: str) -> bool:
    """Whether importing MODULE imports ray, following our modules' top-level imports."""
    seen: set[str] = set()
    todo = [module, *parents(module)[:-1]]
    while todo:
        current = todo.pop()
        if current.split(".")[0] == "ray":
            return True
        if current in seen:
            continue
        seen.add(current)
        todo += top_level_imports(current)
    return False


def test_no_command_imports_ray_when_it_is_imported():
    # Ray picks the address its processes bind to when it is first imported (jobs/engine/run/loopback.py), so
    # importing a command, and parsing its flags, must not import it.
    assert [c for c in COMMANDS if imports_ray(c)] == []
    assert imports_ray("jobs.engine.run.launch") and not imports_ray("jobs.engine.config")  # the rule itself works


@pytest.mark.slow
@pytest.mark.process
def test_importing_every_command_leaves_ray_unimported():
    code = f"import sys, {', '.join(COMMANDS)}; print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_the_commands_choose_the_loopback_address_before_importing_ray():
    for command in ("train", "sweep"):
        source = (ROOT / "jobs" / f"{command}.py").read_text()
        tree = ast.parse(source)
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        calls = [n.lineno for n in ast.walk(main) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "prefer_loopback"]
        ray_imports = [line for line, name in imports_of(main, f"jobs.{command}") if imports_ray(name)]
        assert calls, f"jobs/{command}.py main() never calls prefer_loopback"
        assert ray_imports, f"jobs/{command}.py main() imports nothing that imports ray: is this test stale?"
        assert all(line > min(calls) for line in ray_imports), (command, min(calls), ray_imports)
