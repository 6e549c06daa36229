"""The report's first section: the leaderboard (every model's clean top-1, corrupted top-1, mCE
and relative mCE with their intervals and seed counts), seed 003's per-corruption CE table, the
seed-to-seed spread, the per-level tables and plot data, and what the benchmark was made of.

CE / mCE are computed here because they divide by the normaliser's errors (the pipeline's
own AlexNet evaluated on the same shards, ``evaluate.normaliser``), which is itself one of
the evaluated models. The report also says what the benchmark was made of: the constants
table of each distortion, and it warns about any distortion that leaves every model at chance
over its levels (``no_signal``): such a distortion only pulls every CE towards 1 and hides the
differences between methods.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA
from robust.evaluation.metrics import mce_report
from robust.evaluation.scoring import errors_of
from robust.report.cells import SHORT, cell, partial_note, percent, ratio_cell, with_interval

SEED_003_ORDER = sorted(IMAGENET_C, key=lambda n: {"gaussian_noise": "gauss", "jpeg_compression": "jpeg", "elastic_transform": "elastic"}.get(n, n))


CHANCE_Z = 1.96  # a top-1 within chance + 1.96 binomial standard errors is "at chance" (one-sided 97.5 %)


def chance_band(num_classes: int, n: int) -> float:
    """The highest top-1 still consistent with guessing among ``num_classes`` on ``n`` images:
    ``1/K + 1.96 sqrt(p (1 - p) / n)`` (normal approximation to the binomial)."""
    p = 1.0 / num_classes
    return p + CHANCE_Z * math.sqrt(p * (1 - p) / max(n, 1))


def at_chance(levels: list[tuple[float, int]], num_classes: int) -> bool:
    """Whether a model guesses on a distortion: its top-1 over all levels pooled (``(top-1, n)``
    per level) lies within :func:`chance_band` of the pooled number of images. Pooled rather
    than level by level: on the old 32 px benchmark (ImageNet constants) ``alexnet_small``
    scored 12.1 % on fog at severity 5 (4.7 standard errors above chance), which a per-level
    rule reads as signal although its mean over the severities was 8.3 %, exactly chance."""
    total = sum(n for _, n in levels)
    return total > 0 and sum(top1 * n for top1, n in levels) / total <= chance_band(num_classes, total)


def no_signal(evals: dict[str, dict[str, Any]]) -> list[str]:
    """Distortions at which every model is at chance (:func:`at_chance`) over its levels."""
    flat: dict[str, bool] = {}
    for result in evals.values():
        classes = result.get("num_classes")
        if not classes:
            return []
        for name, entry in result.get("distortions", {}).items():
            levels = [(v["top1"], v.get("n", result["n"])) for v in entry["levels"].values()]
            flat[name] = flat.get(name, True) and at_chance(levels, classes)
    return [name for name, is_flat in flat.items() if is_flat]


def benchmark_constants(evals: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Distortion -> constants table it was made with (the evaluations agree: same shards)."""
    constants: dict[str, str | None] = {}
    for result in evals.values():
        for name, entry in result.get("distortions", {}).items():
            constants.setdefault(name, entry.get("constants"))
    return constants


def summarise(evals: dict[str, dict[str, Any]], normaliser: str | None, intervals: dict[str, dict[str, Any]] | None = None,
              control: str | None = None) -> dict[str, Any]:
    """Per model: clean top-1, ImageNet-C-style top-1, mean corruption error, and, when the
    normaliser was evaluated (or, with no normaliser model, against AlexNet's published
    ImageNet-C errors where the evaluation has them), CE per corruption, mCE, mCE over the
    extras and relative mCE (percent); with ``intervals`` (:func:`robust.evaluation.bootstrap.intervals`) their 95 % intervals and
    each model's difference from the ``control``; for the benchmark: each distortion's
    constants table and those with no signal."""
    names = list(IMAGENET_C + IMAGENET_C_EXTRA)
    baseline = errors_of(evals[normaliser], names) if normaliser in evals else None
    out: dict[str, Any] = {"normaliser": normaliser if baseline else None, "control": control if control in evals else None,
                           "constants": benchmark_constants(evals), "no_signal": no_signal(evals), "models": {}}
    for model, result in evals.items():
        row: dict[str, Any] = {
            "clean_top1": result["clean"]["top1"],
            "clean_top5": result["clean"]["top5"],
            "imagenet_c_top1": result.get("imagenet_c_top1"),
            "mean_corruption_error": result.get("mean_corruption_error"),
            "deepcorrect": result.get("deepcorrect", {}),
            "parameters": result.get("parameters"),
        }
        errors = errors_of(result, [n for n in names if baseline and n in baseline["corruptions"]])
        report = mce_report(errors, baseline) if baseline and errors["corruptions"] else None if normaliser else result.get("published_alexnet")
        if report:  # against the normaliser model, else (evaluate.baseline: alexnet-imagenet-c) AlexNet's published errors
            row.update(mce=report["mce"], relative_mce=report["relative_mce"], mce_extra=report["mce_extra"], ce=report["ce"],
                       mce_over=len(report["mce_over"]), relative_mce_over=len(report["relative_mce_over"]))
        row.update(((intervals or {}).get("models") or {}).get(model, {}))
        out["models"][model] = row
    out["pairs"] = (intervals or {}).get("pairs") or {}
    return out


def mean_eval(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One evaluation result averaged over the runs of an entry (its training seeds): every
    number is the mean over the runs (an integer that all runs share stays as it is), anything
    else the first run's. Clean top-1, CE, mCE and relative mCE are linear in the errors, so
    the pooled entry's are the means of its seeds'."""
    first = results[0]
    if isinstance(first, dict):
        return {key: mean_eval([r[key] for r in results]) if all(isinstance(r, dict) and key in r for r in results) else value
                for key, value in first.items()}
    if isinstance(first, (int, float)) and not isinstance(first, bool) and all(isinstance(r, (int, float)) for r in results):
        if isinstance(first, int) and all(r == first for r in results):
            return first
        return float(np.mean(results))
    return first


def run_groups(models: dict[str, Any], evaluated: list[str]) -> dict[str, list[str]]:
    """Entry -> its evaluated runs in seed order (replicates pooled with their entry, in
    ``models:`` order); an evaluated run that no entry names stands alone."""
    from robust.methods.common import replicate_groups

    groups = {entry: [r for r in runs if r in evaluated] for entry, runs in replicate_groups(models).items()}
    grouped = {r for runs in groups.values() for r in runs}
    return {**{e: runs for e, runs in groups.items() if runs}, **{r: [r] for r in evaluated if r not in grouped}}


def add_seed_spread(summary: dict[str, Any], runs_evals: dict[str, dict[str, Any]], groups: dict[str, list[str]], normaliser: str | None) -> None:
    """Each entry's number of seeds; for one with several, its runs and each run's clean top-1
    and mCE (``per_seed``) and their standard deviation over the seeds (``seed_sd``)."""
    per_run = summarise(runs_evals, normaliser)["models"]
    for entry, row in summary["models"].items():
        runs = groups.get(entry, [entry])
        row["seeds"] = len(runs)
        if len(runs) > 1:
            row["per_seed"] = {"runs": runs, **{key: [per_run[r].get(key) for r in runs] for key in ("clean_top1", "mce")}}
            row["seed_sd"] = {key: float(np.std(values, ddof=1)) for key, values in row["per_seed"].items()
                              if key != "runs" and all(v is not None for v in values)}


def seed_spread_lines(summary: dict[str, Any]) -> list[str]:
    """The measured seed-to-seed spread of mCE, beside the image-level interval it adds to."""
    rows = {name: row for name, row in summary["models"].items() if (row.get("seed_sd") or {}).get("mce") is not None}
    if not rows:
        return ["", "Every row is one training seed (`seeds` 1): its interval holds the test images' variation only."]
    spreads = [row["seed_sd"]["mce"] for row in rows.values()]
    seeds = sorted({row["seeds"] for row in rows.values()})
    single = [row for row in summary["models"].values() if row.get("seeds", 1) == 1 and (row.get("intervals") or {}).get("mce")]
    half = float(np.median([(r["intervals"]["mce"][1] - r["intervals"]["mce"][0]) / 2 for r in single])) if single else None
    return ["", f"Seed-to-seed spread of mCE (standard deviation over {'/'.join(map(str, seeds))} training seeds, points): "
            + ", ".join(f"`{name}` {row['seed_sd']['mce']:.2f}" for name, row in rows.items())
            + f"; median {float(np.median(spreads)):.2f}" + (f", against a median half-width of {half:.2f} for the one-seed rows' "
                                                                "image-only 95 % intervals." if half is not None else ".")
            + " Rows with one seed do not hold this variation: a difference smaller than it needs several seeds."]


CONSTANTS_MEANING = {
    "imagenet": "ImageNet-C's 224 px constants and formulas (Hendrycks' make_imagenet_c.py)",
    "imagecorruptions": "the imagecorruptions package fork's 224 px variant",
    "tinyimagenet": "Tiny-ImageNet-C's 64 px constants (Hendrycks' make_tinyimagenet_c.py)",
    "cifar": "CIFAR-10-C's 32 px constants (Hendrycks' make_cifar_c.py)",
    "released": "the released corrupted files (corrupt.source: released)",
}


def constants_lines(constants: dict[str, str | None]) -> list[str]:
    """One line per constants table used: which distortions it made."""
    by_table: dict[str, list[str]] = {}
    for name, table in constants.items():
        if table:
            by_table.setdefault(table, []).append(name)
    return [f"Benchmark: {', '.join(f'`{n}`' for n in names)} made with {CONSTANTS_MEANING.get(table, table)} (`{table}`)."
            for table, names in by_table.items()] + ([""] if by_table else [])


def no_signal_lines(names: list[str]) -> list[str]:
    if not names:
        return []
    return [f"**Warning: no signal.** Every model is at chance on {', '.join(f'`{n}`' for n in names)} (top-1 over all levels "
            "within 1.96 binomial standard errors of 1/classes): these distortions only pull every CE towards 1. Check their "
            "strength for this image size (corrupt.constants).", ""]


def severity_curves(evals: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Plot data: per distortion, rows ``{"model": name, "level": 0..n, "top1": value}``
    (level 0 = clean). One row per (model, level), so the plot's template draws one line per
    model (``color: model``) and ``dvc.yaml`` never has to list the models."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for model, result in evals.items():
        for dist, entry in result.get("distortions", {}).items():
            rows = curves.setdefault(dist, [])
            rows.append({"model": model, "level": 0, "top1": result["clean"]["top1"]})
            rows += [{"model": model, "level": int(level), "top1": scores["top1"]} for level, scores in sorted(entry["levels"].items(), key=lambda kv: int(kv[0]))]
    return curves


def leaderboard_lines(summary: dict[str, Any]) -> list[str]:
    """The leaderboard table (every row's clean top-1, corrupted top-1, mCE and relative mCE with
    their intervals and seed counts), what the benchmark was made of and the seed spread."""
    models = summary["models"]
    norm = summary["normaliser"]
    lines = [f"Top-1 in percent; CE / mCE relative to `{norm}` = 100 (its own mCE is 100 by definition)." if norm else
             "No normaliser was evaluated, so CE / mCE are not available.", ""]
    if any(row.get("intervals") for row in models.values()):
        lines += ["[low, high]: 95 % paired bootstrap interval over the test images, and for a row run at several training seeds "
                  "(`seeds`) over those seeds too (two levels; the row is their mean); `n.s.`: a difference whose interval contains 0; "
                  "`holds in k`: in how many of the seeds, each alone, the difference gives the same verdict.", ""]
    lines += constants_lines(summary.get("constants") or {}) + no_signal_lines(summary.get("no_signal") or [])
    extra = any(row.get("mce_extra") is not None for row in models.values())  # the 4 extra corruptions were scored (evaluate.suites)
    lines += ["| model | seeds | clean top-1 | clean top-5 | corrupted top-1 (15 x 5) | mCE | relative mCE |" + (" mCE (4 extra) |" if extra else ""),
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if extra else "")]
    for name, row in models.items():
        lines.append(f"| {name} | {row.get('seeds', 1)} | {with_interval(row, 'clean_top1', 100)} | {percent(row['clean_top5'])} | "
                     f"{with_interval(row, 'imagenet_c_top1', 100)} | {with_interval(row, 'mce')}{partial_note(row, 'mce_over')} | "
                     f"{with_interval(row, 'relative_mce')}{partial_note(row, 'relative_mce_over')} |" + (f" {cell(row.get('mce_extra'))} |" if extra else ""))
    return lines + seed_spread_lines(summary)


def ce_table_lines(summary: dict[str, Any]) -> list[str]:
    """Seed 003's per-corruption CE table for every row (the normaliser = 1.00)."""
    models = summary["models"]
    if not any("ce" in row for row in models.values()):
        return []
    present = [n for n in SEED_003_ORDER if any(n in row.get("ce", {}) for row in models.values())]
    lines = ["", "## Corruption errors (seed 003's table: normaliser = 1.00)", "",
             "| Model | mCE | " + " | ".join(SHORT[n] for n in present) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in present) + " |"]
    for name, row in models.items():
        if "ce" in row:
            lines.append(f"| {name} | {ratio_cell(row['mce'])} | " + " | ".join(ratio_cell(row["ce"].get(n)) for n in present) + " |")
    return lines


def level_table_lines(summary: dict[str, Any], evals: dict[str, dict[str, Any]]) -> list[str]:
    """Seed 000's averages of every row that has them, then every row's top-1 per distortion and level."""
    models = summary["models"]
    lines: list[str] = []
    dc = {name: row["deepcorrect"] for name, row in models.items() if row.get("deepcorrect")}
    if dc:
        lines += ["", "## DeepCorrect distortions (top-1, mean of clean + 6 levels, as in seed 000)", "",
                  "| model | clean | Gaussian blur avg | AWGN avg |", "| --- | ---: | ---: | ---: |"]
        for name, values in dc.items():
            lines.append(f"| {name} | {models[name]['clean_top1']:.4f} | {cell(values.get('dc_blur'), digits=4)} | {cell(values.get('dc_awgn'), digits=4)} |")
    lines += ["", "## Top-1 per distortion and level", ""]
    for name, result in evals.items():
        lines += [f"### {name}", "", "| distortion | " + " | ".join(f"level {i}" for i in range(1, 7)) + " | mean |",
                  "| --- |" + " ---: |" * 7]
        for dist, entry in result.get("distortions", {}).items():
            cells = [percent(entry["levels"].get(str(i), {}).get("top1")) for i in range(1, 7)]
            lines.append(f"| {dist} | " + " | ".join(cells) + f" | {percent(entry['mean_top1'])} |")
        lines.append("")
    return lines
