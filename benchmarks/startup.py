"""Start-up cost of every stage script: the time from process start to its first real work (its
first read of an input), minus a bare ``python -c "import torch"``, measured in the same run.

Each stage runs in an empty temporary folder holding only ``params.yaml`` (the default, with
``data.root`` / ``iqa.autoencoder.patches_root`` pointed at a missing path where a stage has
no other input to stop at), so it stops with its clean "not found" error right where its
work would start: everything before that is start-up (Python, imports, reading params).
Prints one row per stage (median of ``--repeats``) and whether it is within ``--limit``
seconds above torch; exits 1 when one is not.

    python benchmarks/startup.py [--repeats 3] [--limit 1.5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: stage script -> its arguments (one representative item of each foreach)
STAGES: dict[str, list[str]] = {
    "prepare.py": [], "corrupt.py": ["gaussian_noise"], "train.py": ["deepcorrect_net"], "evaluate.py": ["deepcorrect_net"],
    "activations.py": ["deepcorrect_net"], "rank.py": ["deepcorrect_net", "dc_blur"], "gradients.py": [], "detect.py": [],
    "iqa_autoencoder.py": [], "iqa.py": [], "ra.py": [], "report.py": [], "inputs.py": [],
}


def timed(command: list[str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, (done.stderr.strip().splitlines() or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=1.5, help="allowed seconds above bare import torch")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="robust-startup-"))
    try:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["data"].update(source="cifar10", root=str(folder / "missing"))  # prepare: stops at the missing dataset
        params["iqa"]["autoencoder"]["patches_root"] = str(folder / "missing")  # iqa-autoencoder: at the missing photographs
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        torch_time = statistics.median(timed([sys.executable, "-c", "import torch"], folder)[0] for _ in range(args.repeats))
        print(f"bare `import torch`: {torch_time:.2f} s (median of {args.repeats})")
        print(f"{'stage script':<22} {'seconds':>8} {'above torch':>12}  stopped at")
        worst = 0.0
        for script, extra in STAGES.items():
            runs = [timed([sys.executable, str(ROOT / "stages" / script), *extra], folder) for _ in range(args.repeats)]
            seconds = statistics.median(r[0] for r in runs)
            code, message = runs[-1][1], runs[-1][2]
            above = seconds - torch_time
            worst = max(worst, above)
            flag = "" if above <= args.limit else f"  OVER {args.limit} s"
            print(f"{script:<22} {seconds:>8.2f} {above:>+12.2f}  exit {code}: {message[:90]}{flag}")
        print(f"worst: {worst:+.2f} s above torch (limit {args.limit} s)")
        sys.exit(0 if worst <= args.limit else 1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
