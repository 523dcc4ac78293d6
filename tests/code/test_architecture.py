"""The package's areas and what may depend on what (README, "Architecture").

The core (top-level modules but the stages) depends on nothing else of churnops; the
stages, serving, release, retraining, intake and the UI depend on the core and on
themselves; `cli` only names modules. No import cycles anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def churnops_imports(path: Path) -> set[str]:
    """The churnops modules a file imports (at any level: lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    return {name for name in names if name in modules and name != "churnops"}


def graph() -> dict[str, set[str]]:
    return {module_name(path): churnops_imports(path) for path in SRC.rglob("*.py")}


def stages(repo_root: Path) -> set[str]:
    commands = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"].values()
    return {stage["cmd"].removeprefix("python -m ") for stage in commands}


def area(module: str, stage_modules: set[str]) -> str:
    parts = module.split(".")
    if len(parts) > 2:
        return parts[1]
    if module in stage_modules:
        return "stages"
    return "cli" if module == "churnops.cli" else "core"


def test_every_stage_is_a_top_level_module_named_in_dvc_yaml(repo_root: Path) -> None:
    for module in stages(repo_root):
        assert module.count(".") == 1, f"{module}: a stage lives at the top of the package"
        assert (SRC / f"{module.replace('.', '/')}.py").exists(), module


def test_each_area_depends_only_on_the_core_and_itself(repo_root: Path) -> None:
    stage_modules = stages(repo_root)
    wrong = []
    for module, imported in graph().items():
        mine = area(module, stage_modules)
        allowed = {"cli": set(), "core": {"core"}, "stages": {"core"}}.get(mine, {"core", mine})
        for name in imported:
            if area(name, stage_modules) not in allowed:
                wrong.append(f"{module} ({mine}) imports {name} ({area(name, stage_modules)})")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for name in sorted(edges.get(module, ())):
            if state.get(name) == "open":
                cycle = [*path[path.index(name) :], name] if name in path else [module, name]
                raise AssertionError(" -> ".join(cycle))
            if name not in state:
                visit(name, [*path, name])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_check_sees_a_cycle_and_a_shortcut(tmp_path: Path) -> None:
    """The rules above can fail: a serving module importing release is a shortcut."""
    assert area("churnops.serving.bento", set()) == "serving"
    assert area("churnops.release.registry", set()) == "release"
    assert area("churnops.schema", set()) == "core"
    assert area("churnops.train", {"churnops.train"}) == "stages"
    source = tmp_path / "m.py"
    source.write_text("from churnops.serving.settings import BENTO_MODEL\nimport churnops.schema\n")
    assert churnops_imports(source) == {
        "churnops.serving.settings",
        "churnops.schema",
    }
