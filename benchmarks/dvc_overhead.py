"""DVC's own per-stage work, the part of a no-op ``dvc repro`` and of a fresh clone's run that
no stage script controls.

A no-op ``dvc repro`` checks every stage: DVC parses ``params.yaml`` once per stage that
records params, looks up each recorded key with ``dpath`` (a walk over the whole params
tree per key), checks each dependency's hash and takes a run lock. After every stage that
runs, DVC re-reads ``dvc.lock`` with ruamel's round-trip loader (pure Python) and writes it
back whole: in a fresh clone, where the committed lock is full-size from the first stage on,
that is paid at full size once per stage. This script times those pieces with DVC's own
functions on this checkout's ``params.yaml`` and ``dvc.lock`` and, with ``--noop``, the whole
no-op ``dvc repro`` (run it only on a checkout whose ``dvc status`` is clean):

    python benchmarks/dvc_overhead.py            # the pieces (about 20 s)
    python benchmarks/dvc_overhead.py --noop     # and a timed no-op dvc repro (median of 3)

Run nothing else heavy meanwhile.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import dpath
import yaml
from dvc.utils.serialize import load_yaml, parse_yaml_for_update
from dvc.utils.serialize._yaml import _get_yaml

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop", action="store_true", help="also time a no-op `dvc repro` here (median of 3)")
    args = parser.parse_args()
    params_path, lock_path = ROOT / "params.yaml", ROOT / "dvc.lock"
    if not lock_path.is_file():
        sys.exit(f"error: {lock_path} is missing. Fix: run `dvc repro` first (the lock records what each stage depends on).")
    lock = yaml.safe_load(lock_path.read_text())["stages"]
    keys = [key for stage in lock.values() for listed in (stage.get("params") or {}).values() for key in listed]
    with_params = sum(1 for stage in lock.values() if stage.get("params"))
    deps = sum(len(stage.get("deps") or []) for stage in lock.values())
    config = load_yaml(str(params_path))

    parse = best_of(lambda: [load_yaml(str(params_path)) for _ in range(with_params)])
    lookup = best_of(lambda: [dpath.get(config, key, separator=".") for key in keys])
    text = lock_path.read_text()
    data = parse_yaml_for_update(text, str(lock_path))
    load = best_of(lambda: parse_yaml_for_update(text, str(lock_path)))
    dump = best_of(lambda: _get_yaml().dump(data, io.StringIO()))

    print(f"{len(lock)} stages, {with_params} record params, {len(keys)} recorded keys, {deps} dependencies; "
          f"params.yaml {params_path.stat().st_size / 1024:.0f} KB, dvc.lock {lock_path.stat().st_size / 1024:.0f} KB")
    print(f"no-op: params.yaml parsed once per stage  {parse:6.2f} s  ({1000 * parse / with_params:.1f} ms x {with_params})")
    print(f"no-op: dpath lookup of each recorded key  {lookup:6.2f} s  ({1000 * lookup / len(keys):.2f} ms x {len(keys)})")
    print(f"fresh clone: dvc.lock round trip per stage  {load + dump:6.2f} s  (load {load:.2f} + dump {dump:.2f}); "
          f"x {len(lock)} stages = {(load + dump) * len(lock) / 60:.1f} min")
    if args.noop:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0 or "Running stage" in done.stdout:
                sys.exit("error: `dvc repro` was not a no-op here. Fix: run it once (or `dvc status`) until nothing is left to do, then rerun this.")
        noop = statistics.median(times)
        print(f"no-op dvc repro  {noop:6.2f} s (median of 3); params parse + lookups are {100 * (parse + lookup) / noop:.0f} % of it")


if __name__ == "__main__":
    main()
