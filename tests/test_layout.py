"""The package's layout: stages in order, no import cycles (issue 25)."""

import ast
from pathlib import Path

import genrekit

PACKAGE = Path(genrekit.__file__).resolve().parent


def modules() -> dict[str, Path]:
    """Every module of genrekit by dotted name (packages by their ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The genrekit modules a file imports, at module level or inside functions alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from genrekit.models import registry`` imports the submodule
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def stage(module: str) -> str:
    """``genrekit.models.registry`` -> ``models``; the package itself has none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) - {name} for name, path in known.items()}


def test_every_module_belongs_to_a_stage():
    loose = [name for name in modules() if name != "genrekit" and name.split(".")[1] not in genrekit.STAGES]
    assert loose == []
    assert {path.parent.name for path in PACKAGE.glob("*/__init__.py")} == set(genrekit.STAGES)


def test_lower_stages_never_import_higher_ones():
    assert genrekit.MAY_IMPORT["models"] == {"core", "audio", "dataset"}
    assert "training" not in genrekit.MAY_IMPORT["inference"]
    forbidden = sorted(
        f"{importer} imports {imported}"
        for importer, targets in import_graph().items()
        if importer != "genrekit"
        for imported in targets
        if stage(imported) not in genrekit.MAY_IMPORT[stage(importer)] | {stage(importer)}
    )
    assert forbidden == []


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(
                    " -> ".join([*path[path.index(target) :], node, target])
                    if target in path
                    else f"{node} -> {target}"
                )
            elif target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
    # the checks above would pass vacuously if lazy imports were missed
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from genrekit.models import registry\n    import genrekit.core.config\n")
    assert imports_of(source, modules()) == {"genrekit.models.registry", "genrekit.core.config"}
