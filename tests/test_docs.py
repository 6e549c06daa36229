"""README and docs name only what exists: every repository path, every link, every
``python benchmarks/...`` script and ``robust <command>``, and README's test command is the
one ``.ci/run`` runs."""

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: where a path named in the docs must exist (data/ holds DVC outputs, made by dvc repro, not in git)
TRACKED = ("robust/", "stages/", "benchmarks/", "tests/", "docs/", "metrics/", ".ci/", ".dvc/", "experiments/")
TOP_FILES = ("dvc.yaml", "params.yaml", "constraints.txt", "README.md", "pyproject.toml", "dvc.lock")


def test_every_page_exists_and_readme_is_short():
    assert len(PAGES) >= 10
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_paths_and_links_named_in_a_page_exist(page):
    text = page.read_text()
    missing = []
    for token in re.findall(r"`([^`\s]+)`", text):
        path = token.rstrip(":,.")
        if any(c in path for c in "<>*{}$") or "@" in path:
            continue  # a pattern (shard-*.tar, <model>.json), not a path
        if path.startswith(TRACKED) or path in TOP_FILES:
            if not (ROOT / path).exists():
                missing.append(path)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_commands_named_in_a_page_exist(page):
    from robust.cli import COMMANDS

    text = page.read_text()
    scripts = re.findall(r"python (?:-m )?((?:benchmarks|tests|stages|experiments)/[\w/]+\.py)", text)
    assert all((ROOT / s).is_file() for s in scripts), [s for s in scripts if not (ROOT / s).is_file()]
    commands = re.findall(r"`robust ([a-z][\w-]*)", text)
    unknown = [c for c in commands if c not in COMMANDS and c != "--help"]
    assert not unknown, f"{page.name} names robust commands that do not exist: {unknown}"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    test_command = next(b.strip() for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    install = next(line for line in ci.splitlines() if "pip install" in line)
    install = install.split(" || ")[0].strip()
    ci_steps = [shlex.split(step) for step in install.split(" && ")] + [["python", "-m", "pytest"]]
    assert "python -m pytest" in ci
    readme_steps = [shlex.split(step) for step in test_command.split(" && ")]
    assert readme_steps == [[word for word in step if word != "-q"] for step in ci_steps]


def test_package_paths_named_in_code_and_params_exist():
    # the package moved by concern once (issue 34); a comment naming the old place misleads as much as a doc
    sources = [ROOT / "params.yaml", ROOT / "dvc.yaml", ROOT / "pyproject.toml", *ROOT.glob("stages/*.py"), *ROOT.glob("robust/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    missing = set()
    for source in sources:
        for path in re.findall(r"\brobust/[\w/]+(?:\.py)?", source.read_text()):
            if not ((ROOT / path).exists() or (ROOT / f"{path}.py").exists()):
                missing.add(f"{source.relative_to(ROOT)}: {path}")
    assert not missing, sorted(missing)


def test_readme_time_budget_is_the_benchmarks_and_fits_40_minutes():
    # the budget lives in benchmarks/pipeline.py (which prints each study against it); README lists the same rows
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipeline_benchmark", ROOT / "benchmarks" / "pipeline.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    section = (ROOT / "README.md").read_text().split("### Time budget", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([\d.]+) \|", section, flags=re.M))
    assert {study: float(minutes) for study, minutes in rows.items() if study != "total"} == benchmark.BUDGET
    assert sum(benchmark.BUDGET.values()) <= benchmark.TOTAL_BUDGET == float(rows["total"]) <= 40
