"""Wall time of the default pipeline from scratch, per group of stages, and of a no-op rerun.

Copies the pipeline (``dvc.yaml``, ``params.yaml``, ``.dvc/plots``, ``stages/``, ``robust/``)
into a temporary git + DVC repository, runs ``dvc repro`` there with the run-cache off (so
every stage really runs), timestamps each ``Running stage`` line DVC prints, and then times a
second ``dvc repro`` that has nothing to do. Prints one row per group of stages: prepare,
corrupt, train per method, activations / rank, evaluate, report.

    python benchmarks/pipeline.py                          # the default, from scratch
    python benchmarks/pipeline.py --cache .dvc/cache       # share this checkout's DVC cache, so a
                                                           # later `dvc repro` here restores the outputs
    python benchmarks/pipeline.py -S train.epochs=2        # a params override, as dvc exp run -S
    python benchmarks/pipeline.py --in-place               # this checkout: dvc.lock removed, so every stage runs,
                                                           # and the run's dvc.lock / outputs are this checkout's

Run nothing else heavy meanwhile: on 2 cores another job slows every stage down.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNNING = re.compile(r"Running stage '([^']+)'")


#: the study each method's models belong to (a row of the README's time budget)
STUDY = {"baseline": "baselines", "finetune": "seed 000 (DeepCorrect)", "deepcorrect": "seed 000 (DeepCorrect)", "vae": "seed 001 (gradients)",
         "ra": "seed 002 (recognition-aware)", "corruption": "seed 003 (corruption-augmented)", "noise": "seed 004 (noise)", "ant": "seed 004 (noise)"}
#: stages outside train@ / evaluate@ -> their row
STAGE_STUDY = {"prepare": "data", "activations": "seed 000 (DeepCorrect)", "rank": "seed 000 (DeepCorrect)", "gradients": "seed 001 (gradients)",
               "detect": "seed 001 (gradients)", "iqa-autoencoder": "seed 001 (IQA)", "iqa": "seed 001 (IQA)", "ra": "seed 002 (recognition-aware)",
               "report": "report", "plots-template": "report"}
#: minutes each study may take in the default from scratch on the 2-core development machine
#: (README's time-budget table lists these; they add up to at most 40, the budget of the whole)
BUDGET = {"data": 2.0, "baselines": 4.4, "seed 000 (DeepCorrect)": 9.2, "seed 001 (gradients)": 1.2, "seed 001 (IQA)": 2.4,
          "seed 002 (recognition-aware)": 4.8, "seed 003 (corruption-augmented)": 4.2, "seed 004 (noise)": 11.4, "report": 0.4}
TOTAL_BUDGET = 40.0


def stage_group(stage: str, models: dict, control: str | None = None) -> str:
    """The budget row a stage's time is counted in: its study, then train / evaluate / other.
    The control (``evaluate.control``) and its replicates count with seed 004, whose table
    they serve."""
    kind, _, item = stage.partition("@")
    if kind.startswith("corrupt"):
        return "data: corrupt"
    if kind in ("train", "train-study", "evaluate"):
        spec = models.get(item) or {}
        entry = item.rsplit("-s", 1)[0] if "replicate" in spec else item
        study = "seed 004 (noise)" if entry == control else STUDY.get(spec.get("method", "baseline"), "other")
        return f"{study}: {'evaluate' if kind == 'evaluate' else 'train'}"
    return STAGE_STUDY.get(kind, kind)


def set_param(params: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a params dict."""
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def make_repo(repo: Path, overrides: list[str], cache: Path | None) -> dict:
    for name in ("dvc.yaml", ".dvcignore", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "robust"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for assignment in overrides:
        set_param(params, assignment)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["init", "-q"], ["config", "user.email", "bench@example.com"], ["config", "user.name", "bench"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    if cache is not None:
        dvc(repo, "cache", "dir", str(cache.resolve()))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "pipeline"], cwd=repo, check=True)
    return params


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, env=environment())


def environment() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def timed_repro(repo: Path, log: Path) -> tuple[list[tuple[str, float]], float]:
    """Run ``dvc repro --no-run-cache``; returns [(stage, seconds)] and the total."""
    starts: list[tuple[str, float]] = []
    begin = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--no-run-cache"], cwd=repo, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=environment())
        assert process.stdout is not None
        for line in process.stdout:
            handle.write(line)
            match = RUNNING.search(line)
            if match:
                starts.append((match.group(1), time.perf_counter()))
                print(f"[{time.perf_counter() - begin:7.1f} s] {match.group(1)}", flush=True)
        if process.wait() != 0:
            sys.exit(f"dvc repro failed; see {log}")
    end = time.perf_counter()
    times = [(stage, (starts[i + 1][1] if i + 1 < len(starts) else end) - start) for i, (stage, start) in enumerate(starts)]
    return times, end - begin


def timed_noop(repo: Path) -> float:
    """Seconds of a second ``dvc repro``, which has nothing to do."""
    start = time.perf_counter()
    dvc(repo, "repro")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="a params override, key=value")
    parser.add_argument("--cache", type=Path, help="DVC cache folder to use (default: a fresh one in the temporary copy)")
    parser.add_argument("--keep", type=Path, help="build the copy here and keep it (default: a temporary folder)")
    parser.add_argument("--in-place", action="store_true", help="run in this checkout from scratch: remove dvc.lock, then dvc repro")
    args = parser.parse_args()
    if args.in_place:
        if args.overrides or args.cache or args.keep:
            sys.exit("--in-place runs this checkout's own params and cache: no -S, --cache or --keep")
        (ROOT / "dvc.lock").unlink(missing_ok=True)  # without a lock entry every stage runs
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        times, total = timed_repro(ROOT, Path(tempfile.gettempdir()) / "robust-pipeline-repro.log")
        noop = timed_noop(ROOT)
    else:
        base = args.keep or Path(tempfile.mkdtemp(prefix="robust-pipeline-"))
        base.mkdir(parents=True, exist_ok=True)
        repo = base / "repo"
        if repo.exists():
            sys.exit(f"{repo} exists: give an empty --keep folder")
        repo.mkdir()
        try:
            params = make_repo(repo, args.overrides, args.cache)
            times, total = timed_repro(repo, base / "repro.log")
            noop = timed_noop(repo)
        finally:
            if args.keep is None:
                shutil.rmtree(base, ignore_errors=True)
    groups: dict[str, list[float]] = defaultdict(list)
    models = {**(params.get("models") or {}), **(params.get("study_models") or {})}
    control = (params.get("evaluate") or {}).get("control")
    for stage, seconds in times:
        groups[stage_group(stage, models, control)].append(seconds)
    print(f"\n{'group of stages':<44} {'stages':>6} {'seconds':>9} {'minutes':>8} {'share':>6}")
    for group in sorted(groups):
        values = groups[group]
        print(f"{group:<44} {len(values):>6} {sum(values):>9.1f} {sum(values) / 60:>8.1f} {sum(values) / total:>6.1%}")
    print(f"{'total (dvc repro from scratch)':<44} {len(times):>6} {total:>9.1f} {total / 60:>8.1f}")
    print(f"{'no-op dvc repro':<44} {'':>6} {noop:>9.1f}")
    studies: dict[str, float] = defaultdict(float)
    for group, values in groups.items():
        studies[group.split(":")[0]] += sum(values) / 60
    print(f"\n{'study (README time budget)':<44} {'budget':>7} {'minutes':>8}")
    for study in [*BUDGET, *sorted(set(studies) - set(BUDGET))]:
        budget = BUDGET.get(study)
        flag = "" if budget is None or studies[study] <= budget else "  over budget"
        print(f"{study:<44} {'-' if budget is None else f'{budget:.1f}':>7} {studies[study]:>8.1f}{flag}")
    print(f"{'total':<44} {TOTAL_BUDGET:>7.1f} {total / 60:>8.1f}{'' if total / 60 <= TOTAL_BUDGET else '  over budget'}")
    print("\nper stage (seconds):")
    for stage, seconds in times:
        print(f"  {stage:<50} {seconds:>7.1f}")


if __name__ == "__main__":
    main()
