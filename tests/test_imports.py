"""The package's layering: no import cycles between evaluation and the methods."""

import subprocess
import sys


def test_methods_and_engine_do_not_import_evaluation():
    # evaluation builds models through the methods registry; the methods must not need evaluation back
    code = "import sys, robust.methods, robust.engine, robust.distortions.corrupt; assert 'robust.evaluation.scoring' not in sys.modules, 'cycle'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_import_cycle_between_the_packages_modules():
    """Every import, the lazy ones inside functions included: the graph of robust's modules has
    no cycle, so every folder can be read bottom-up (corrupt and released once imported each other)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p for p in (root / "robust").rglob("*.py")}

    def imported(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("robust"):
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("robust"))
        return {n for n in names if n in files}

    graph = {module: imported(path) - {module} for module, path in files.items()}
    seen, stack = set(), []

    def visit(module: str) -> None:
        if module in stack:
            raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(module):] + [module])}")
        if module in seen:
            return
        stack.append(module)
        for dependency in sorted(graph[module]):
            visit(dependency)
        stack.pop()
        seen.add(module)

    for module in sorted(graph):
        visit(module)


def test_every_folder_of_the_package_says_what_it_holds():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "robust"
    for init in root.rglob("__init__.py"):
        text = init.read_text().lstrip()
        assert text.startswith('"""') and len(text.split('"""')[1].split()) >= 8, f"{init} has no module docstring"
