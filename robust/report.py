"""The ``report`` stage: every model's evaluation -> summary metrics, tables, plot data,
figures (:mod:`robust.figures`) and one self-contained page, ``metrics/report.html``.

CE / mCE are computed here because they divide by the normaliser's errors (the pipeline's
own AlexNet evaluated on the same shards, ``evaluate.normaliser``), which is itself one of
the evaluated models. Tables follow the seeds' shapes: seed 003's per-corruption CE table
(rows = models, ``mCE`` then the 15 corruptions alphabetically, AlexNet = 1.00) and a summary
like seed 004's (clean top-1, corrupted top-1, mCE).

The report also says what the benchmark was made of: the constants table of each distortion
(``constants`` in ``summary.json``, from the shards' ``info.json`` via the evaluations), and it
warns about any distortion that leaves every model at chance over its levels (``no_signal``):
such a distortion only pulls every CE towards 1 and hides the differences between methods.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robust.data.shards import atomic_dir, decode_image, image_field, read_info, read_tar, write_csv, write_json
from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA
from robust.errors import RobustError
from robust.evaluation import EvaluateParams, errors_of
from robust.metrics import mce_report

FIGURES = "figures"
SEED_003_ORDER = sorted(IMAGENET_C, key=lambda n: {"gaussian_noise": "gauss", "jpeg_compression": "jpeg", "elastic_transform": "elastic"}.get(n, n))
SHORT = {"brightness": "Bright.", "contrast": "Contrast", "defocus_blur": "Defocus", "elastic_transform": "Elastic", "fog": "Fog", "frost": "Frost",
         "gaussian_noise": "Gauss.", "glass_blur": "Glass", "impulse_noise": "Impulse", "jpeg_compression": "jpeg", "motion_blur": "Motion",
         "pixelate": "Pixel.", "shot_noise": "Shot", "snow": "Snow", "zoom_blur": "Zoom",
         # CURE-TSR's challenge types, as seed 001's tables name them (the unnamed ones by their initials)
         "cure_decolorization": "DE", "cure_lens_blur": "LB", "cure_codec_error": "CE", "cure_darkening": "DR", "cure_dirty_lens": "DL",
         "cure_exposure": "EX", "cure_gaussian_blur": "GB", "cure_noise": "NO", "cure_rain": "RA", "cure_shadow": "SH", "cure_snow": "SN",
         "cure_haze": "HZ"}  # fmt: skip


CHANCE_BCE = 0.99 * math.log(2)  # a balanced detector's validation BCE at or above this learned (almost) nothing
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
    normaliser was evaluated, CE per corruption, mCE, mCE over the extras and relative mCE
    (percent); with ``intervals`` (:func:`robust.bootstrap.intervals`) their 95 % intervals and
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
        if baseline and errors["corruptions"]:
            report = mce_report(errors, baseline)
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


def _cell(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    """A table cell: ``value * scale`` with ``digits`` decimals, ``-`` when missing."""
    return "-" if value is None else f"{value * scale:.{digits}f}"


def _pct(value: float | None) -> str:
    return _cell(value, 100)


def _ratio(value: float | None) -> str:
    """A percent CE as seed 003's ratio (AlexNet = 1.00)."""
    return _cell(None if value is None else value / 100, digits=2)


def _bounds(row: dict[str, Any], key: str, scale: float) -> str:
    """`` [low, high]`` of a statistic's 95 % interval, or nothing without one."""
    bounds = (row.get("intervals") or {}).get(key)
    return "" if not bounds else f" [{bounds[0] * scale:.1f}, {bounds[1] * scale:.1f}]"


def _with_interval(row: dict[str, Any], key: str, scale: float = 1.0) -> str:
    """A cell: the value and its 95 % interval, e.g. ``47.5 [46.1, 48.9]``."""
    return _cell(row.get(key), scale) + ("" if row.get(key) is None else _bounds(row, key, scale))


def _partial(row: dict[str, Any], key: str) -> str:
    """`` (partial: k of 15)`` after an mCE averaged over fewer than the 15 corruptions."""
    count = row.get(key)
    return "" if count is None or count >= len(IMAGENET_C) or row.get(key.replace("_over", "")) is None else f" (partial: {count} of {len(IMAGENET_C)})"


def _change(row: dict[str, Any], control: dict[str, Any] | None, key: str, scale: float = 1.0, versus: dict[str, Any] | None = None) -> str:
    """A model's difference from the control with its paired 95 % interval (``versus``, default
    the row's ``vs_control`` entry); ``n.s.`` when the interval contains 0 (no difference shown)."""
    if control is None or row is control or row.get(key) is None or control.get(key) is None:
        return "-"
    text = f"{(row[key] - control[key]) * scale:+.1f}"
    versus = versus if versus is not None else (row.get("vs_control") or {}).get(key)
    if versus and versus.get("interval"):
        low, high = versus["interval"]
        text += f" [{low * scale:+.1f}, {high * scale:+.1f}]" + ("" if versus["significant"] else " n.s.") + _holds(versus)
    return text


def _holds(versus: dict[str, Any]) -> str:
    """`` (1 seed)`` or `` (3 seeds, holds in 2)``: in how many training seeds the verdict holds."""
    seeds = versus.get("seeds", 1)
    return " (1 seed)" if seeds <= 1 else f" ({seeds} seeds, holds in {versus.get('holds', 0)})"


def _of_method(models: dict[str, Any], method: str) -> dict[str, dict[str, Any]]:
    """The entries of ``method`` (not their replicates: an entry's row pools its seeds)."""
    return {name: spec for name, spec in models.items() if isinstance(spec, dict) and spec.get("method") == method and "replicate" not in spec}


def deepcorrect_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Seed 000's comparison: baseline / fine-tuning / DeepCorrect per distortion (top-1
    averaged over clean + 6 levels), their trainable parameters, and each one's mCE."""
    rows = summary["models"]
    lines: list[str] = []
    for name, spec in _of_method(models, "deepcorrect").items():
        dist = spec.get("distortion", "dc_blur")
        tuned = comparison_finetune(models, spec, summary.get("control"))
        control = summary.get("control")
        same_base = control is not None and (models.get(control) or {}).get("base") == spec.get("base")
        trio = [("baseline", spec.get("base")), ("clean epochs (control)", control if same_base else None), ("fine-tuning", tuned), ("DeepCorrect", name)]
        trio = [(label, model) for label, model in trio if model in rows]
        if not lines:
            lines += ["", "## DeepCorrect against fine-tuning (seed 000's table)", "",
                      "Top-1 as fractions; `blur avg` / `AWGN avg` average clean + the 6 levels, as the seed does. mCE is on the 15 ImageNet-C "
                      "corruptions (normaliser = 100), which the seed never measured. The control (clean epochs) is trained from one base; "
                      "rows on another base show no control and no change against it.", "",
                      "| trained for | method | model | trainable params | clean | blur avg | AWGN avg | mCE | mCE change vs control |",
                      "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, model in trio:
            row = rows[model]
            params = (row.get("parameters") or {}).get("trainable")
            lines.append(f"| {dist} | {label} | {model} | {params if params is not None else '-'} | {row['clean_top1']:.4f} | "
                         f"{_cell(row['deepcorrect'].get('dc_blur'), digits=4)} | {_cell(row['deepcorrect'].get('dc_awgn'), digits=4)} | {_with_interval(row, 'mce')} | "
                         f"{_change(row, rows.get(control or ''), 'mce') if same_base else '-'} |")
    pairs = summary.get("pairs") or {}
    corrected = set(_of_method(models, "deepcorrect"))  # the pairs also hold P -> R against R (the RA table's)
    versus = [(key, value["mce"]) for key, value in pairs.items()
              if key.split(" - ")[0] in corrected and "mce" in value and value["mce"].get("interval")]
    if lines and versus:
        lines += ["", "DeepCorrect minus fine-tuning, mCE (paired 95 % interval): " + "; ".join(_pair_cell(summary, key) for key, _ in versus).rstrip(".") + "."]
    return lines


def comparison_finetune(models: dict[str, Any], spec: dict[str, Any], control: str | None) -> str | None:
    """The fine-tuning entry seed 000 compares a DeepCorrect entry with: same base and
    distortion, distorted data (not the clean-only control)."""
    dist = spec.get("distortion", "dc_blur")
    return next((n for n, s in _of_method(models, "finetune").items()
                 if n != control and s.get("fraction", 0.5) > 0 and s.get("distortion", "dc_blur") == dist and s.get("base") == spec.get("base")), None)


def comparison_pairs(models: dict[str, Any], control: str | None) -> tuple[tuple[str, str], ...]:
    """(DeepCorrect entry, its fine-tuning comparison) for every DeepCorrect entry, and
    (``P -> R`` entry, its recogniser R alone) for every RA entry (those not scored on the
    benchmark have no leaderboard row and drop out)."""
    pairs = [(name, comparison_finetune(models, spec, control)) for name, spec in _of_method(models, "deepcorrect").items()]
    pairs += [(name, spec.get("base")) for name, spec in _of_method(models, "ra").items()]
    pairs += corruption_pairs(models)
    return tuple((a, b) for a, b in pairs if b is not None)


def clean_partner(models: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """The ``_b`` run a seed 003 ``_c`` entry is compared with: same base, clean data."""
    return next((n for n, s in _of_method(models, "corruption").items() if s.get("base") == spec.get("base") and s.get("data", "clean") == "clean"), None)


def seed_protocol_partner(models: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """The seed-protocol ``_c`` run a ``held_out`` entry is compared with: same base."""
    return next((n for n, s in _of_method(models, "corruption").items()
                 if s.get("base") == spec.get("base") and s.get("data") == "corrupted" and s.get("protocol", "seed") == "seed"), None)


def corruption_pairs(models: dict[str, Any]) -> list[tuple[str, str]]:
    """Seed 003's paired comparisons: every ``_c`` run minus its ``_b`` run, and every
    ``held_out`` run minus the seed-protocol run of the same architecture."""
    pairs = []
    for name, spec in _of_method(models, "corruption").items():
        if spec.get("data") != "corrupted":
            continue
        pairs.append((name, clean_partner(models, spec)))
        if spec.get("protocol", "seed") == "held_out":
            pairs.append((name, seed_protocol_partner(models, spec)))
    return [(a, b) for a, b in pairs if b is not None]


def _label(spec: dict[str, Any]) -> str:
    if spec.get("data", "clean") == "clean":
        return "clean (_b)"
    listed = spec.get("corruptions")
    if listed:
        return f"corrupted (_c), {spec.get('protocol', 'seed')} protocol: {len(listed)} listed"
    return "corrupted (_c), " + ("the 19 (seed protocol)" if spec.get("protocol", "seed") == "seed" else "held out: none of the 15")


def _spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic if len(a) >= 3 else None
    return None if rho is None or not math.isfinite(rho) else float(rho)


def _separated(rows: dict[str, Any], a: str, b: str, key: str) -> bool:
    """Whether runs ``a`` and ``b`` have disjoint (separate, unpaired) 95 % intervals on ``key``."""
    ia, ib = ((rows[r].get("intervals") or {}).get(key) for r in (a, b))
    return ia is not None and ib is not None and (ia[0] > ib[1] or ib[0] > ia[1])


def _ordered(rows: dict[str, Any], order: list[str], key: str, sign: str) -> str:
    """``order`` (best first by ``key``) joined by ``sign`` where the two neighbours' 95 %
    intervals are disjoint and by ``~`` where they overlap (this data does not order them)."""
    return f"`{order[0]}`" + "".join(f" {sign if _separated(rows, a, b, key) else '~'} `{b}`" for a, b in zip(order, order[1:]))


def ranking_line(rows: dict[str, Any], runs: list[str], label: str) -> str:
    """Seed 003's finding on this data: does ranking the ``runs`` by clean top-1 give their
    ranking by mCE (best first: highest top-1, lowest mCE)? ``~`` marks neighbours whose
    intervals overlap."""
    runs = [r for r in runs if rows[r].get("mce") is not None]
    if len(runs) < 2:
        return f"* {label}: fewer than 2 runs with an mCE (no normaliser evaluated?)."
    by_clean = sorted(runs, key=lambda r: -rows[r]["clean_top1"])
    by_mce = sorted(runs, key=lambda r: rows[r]["mce"])
    rho = _spearman([rows[r]["clean_top1"] for r in runs], [-rows[r]["mce"] for r in runs])
    swapped = [(a, b) for i, a in enumerate(by_clean) for b in by_clean[i + 1:] if by_mce.index(a) > by_mce.index(b)]
    verdict = "the same order" if not swapped else "a different order"
    if swapped and all(not (_separated(rows, a, b, "clean_top1") and _separated(rows, a, b, "mce")) for a, b in swapped):
        verdict += ", but only between runs whose separate (unpaired) intervals overlap, so these intervals do not contradict the seed's finding"
    elif swapped:
        verdict += " where the intervals separate the runs, against the seed's finding"
    return (f"* {label}: by clean top-1 {_ordered(rows, by_clean, 'clean_top1', '>')}; by mCE {_ordered(rows, by_mce, 'mce', '<')}: "
            f"{verdict}" + (f" (Spearman rho {rho:+.2f} over {len(runs)} architectures)." if rho is not None else "."))


def corruption_tables(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Seed 003's tables: per architecture x {_b, _c} (and any held-out run) clean top-1 and
    top-5, mCE and the per-corruption CE normalised by the pipeline's normaliser (= 1.00), the
    paired _c - _b differences, and whether clean accuracy ranks the architectures as mCE does."""
    rows = summary["models"]
    runs = {n: s for n, s in _of_method(models, "corruption").items() if n in rows}
    if not runs:
        return []
    norm = summary.get("normaliser")
    pairs = summary.get("pairs") or {}
    lines = ["", "## Corruption-augmented fine-tuning across architectures (seed 003)", "",
             "Each architecture's CPU-sized member starts from its own clean baseline (the `start` column; no ImageNet weights offline) and is "
             "fine-tuned on clean images (_b) or on images that each carry one corruption at one severity (_c). The seed protocol trains on "
             "all 19 corruptions, the 15 tested on included, as seed 003 did; the held-out protocol trains on none of the 15. Top-1 / top-5 in "
             "percent (top-5 without an interval: only top-1 is kept per image); "
             + (f"mCE relative to `{norm}` = 100. " if norm else "no normaliser was evaluated, so no mCE. ") + "Differences are paired over the test images (95 % interval; `n.s.`: it contains 0).", "",
             "| model | start | training data | params | clean top-1 | clean top-5 | mCE | clean top-1 change | mCE change |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, spec in runs.items():
        row = rows[name]
        partner = clean_partner(models, spec) if spec.get("data") == "corrupted" else None
        changes = ["-", "-"]
        if partner in rows:
            pair = pairs.get(f"{name} - {partner}") or {}
            changes = [f"{_change(row, rows[partner], 'clean_top1', 100, pair.get('clean_top1'))} vs `{partner}`",
                       f"{_change(row, rows[partner], 'mce', 1, pair.get('mce'))} vs `{partner}`"]
        params = (row.get("parameters") or {}).get("total")
        lines.append(f"| {name} | `{spec.get('base')}` | {_label(spec)} | {params if params is not None else '-'} | "
                     f"{_with_interval(row, 'clean_top1', 100)} | {_pct(row['clean_top5'])} | {_with_interval(row, 'mce')} | {changes[0]} | {changes[1]} |")
    held = [(n, seed_protocol_partner(models, s)) for n, s in runs.items() if s.get("data") == "corrupted" and s.get("protocol", "seed") == "held_out"]
    held = [(a, b) for a, b in held if b in rows and f"{a} - {b}" in pairs]
    if held:
        lines += ["", "Held-out against seed protocol (mCE, paired 95 % interval): " + "; ".join(_pair_cell(summary, f"{a} - {b}") for a, b in held) + "."]
    present = [n for n in SEED_003_ORDER if any(n in rows[r].get("ce", {}) for r in runs)]
    if norm and present:
        lines += ["", f"Corruption errors in seed 003's shape (`{norm}` = 1.00):", "",
                  "| Model | mCE | " + " | ".join(SHORT[n] for n in present) + " |", "| --- | ---: | " + " | ".join("---:" for _ in present) + " |",
                  f"| {norm} | 1.00 | " + " | ".join("1.00" for _ in present) + " |"]
        for name in runs:
            if "ce" in rows[name]:
                lines.append(f"| {name} | {_ratio(rows[name]['mce'])} | " + " | ".join(_ratio(rows[name]["ce"].get(n)) for n in present) + " |")
    verdicts = []
    for name, spec in runs.items():
        partner = clean_partner(models, spec)
        if spec.get("data") != "corrupted" or spec.get("protocol", "seed") != "seed" or partner not in rows:
            continue
        entry = (pairs.get(f"{name} - {partner}") or {}).get("mce") or {}
        diff = rows[name].get("mce", 0) - rows[partner].get("mce", 0)
        verdicts.append((name, diff, bool(entry.get("significant")) and diff < 0, bool(entry.get("significant"))))
    if verdicts:
        lower = [n for n, _, ok, _ in verdicts if ok]
        others = [f"`{n}` ({d:+.1f}" + (")" if significant else " n.s.)") for n, d, ok, significant in verdicts if not ok]
        lines += ["", f"_c below _b in mCE under the seed protocol (significantly): {len(lower)} of {len(verdicts)} architectures"
                  + (f"; not: {', '.join(others)}." if others else ".")]
    lines += ["", "Does clean accuracy rank the architectures as mCE does (seed 003's finding: the most accurate is the most robust)? "
              "`~`: the neighbours' separate 95 % intervals overlap, so these intervals do not order them (a paired test, as for _c - _b, "
              "could be sharper).", ""]
    if not norm:
        return lines[:-3] + ["", "No normaliser was evaluated, so there is no mCE to rank by."]
    for data, label in (("clean", "_b runs"), ("corrupted", "_c runs (seed protocol)")):
        chosen = [n for n, s in runs.items() if s.get("data", "clean") == data and (data == "clean" or s.get("protocol", "seed") == "seed")]
        if len(chosen) >= 2:
            lines.append(ranking_line(rows, chosen, label))
    return lines


def ra_benchmark_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """``P -> R`` on the whole corruption benchmark beside R alone: clean top-1, corrupted
    top-1, mCE, and the paired ``P -> R`` minus R differences."""
    rows = summary["models"]
    pairs = [(name, spec["base"]) for name, spec in _of_method(models, "ra").items() if name in rows and spec.get("base") in rows]
    if not pairs:
        return []
    lines = ["", "## Recognition-aware processors in front of R, on the corruption benchmark (seed 002, beyond the seed)", "",
             "`P -> R` is scored like any classifier: P restores every test image (super-resolution: the image is first downsampled "
             "as in training), R classifies. Differences from R alone are paired over the test images.", "",
             "| model | clean top-1 | corrupted top-1 (15 x 5) | mCE | clean top-1 - R | mCE - R |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for base in dict.fromkeys(b for _, b in pairs):
        lines.append(f"| {base} (R alone) | {_with_interval(rows[base], 'clean_top1', 100)} | {_with_interval(rows[base], 'imagenet_c_top1', 100)} | "
                     f"{_with_interval(rows[base], 'mce')} | - | - |")
    for name, base in pairs:
        pair = summary["pairs"].get(f"{name} - {base}") or {}
        row = rows[name]
        lines.append(f"| {name} | {_with_interval(row, 'clean_top1', 100)} | {_with_interval(row, 'imagenet_c_top1', 100)} | "
                     f"{_with_interval(row, 'mce')} | {_change(row, rows[base], 'clean_top1', 100, pair.get('clean_top1'))} | "
                     f"{_change(row, rows[base], 'mce', 1, pair.get('mce'))} |")
    return lines


def _pair_cell(summary: dict[str, Any], key: str) -> str:
    a, b = key.split(" - ")
    rows = summary["models"]
    value = (rows[a].get("mce") or 0) - (rows[b].get("mce") or 0)
    entry = summary["pairs"][key]["mce"]
    low, high = entry["interval"]
    return f"`{a}` - `{b}` {value:+.1f} [{low:+.1f}, {high:+.1f}]" + ("" if entry["significant"] else " n.s.") + _holds(entry)


def noise_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Seed 004's table: clean top-1, mean corrupted top-1 (15 x 5), mCE for the vanilla
    base and every noise / ANT model fine-tuned from it."""
    rows = summary["models"]
    trained = {**_of_method(models, "noise"), **_of_method(models, "ant")}
    trained = {n: s for n, s in trained.items() if n in rows}
    if not trained:
        return []
    control_name = summary.get("control")
    control = rows.get(control_name) if control_name else None
    versus = f"`{control_name}`, the base trained as long on clean data only" if control else "the vanilla base (no control evaluated)"
    lines = ["", "## Noise training (seed 004's table)", "",
             f"Top-1 in percent; mCE relative to the normaliser = 100. Changes are against {versus}, with their paired 95 % interval.", "",
             "| model | method | clean top-1 | corrupted top-1 (15 x 5) | mCE | clean change | mCE change |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for base in dict.fromkeys(s.get("base") for s in trained.values()):
        if base not in rows:
            continue
        reference = control or rows[base]
        entries = [(base, "Vanilla")] + ([(control_name, "Vanilla + clean epochs (control)")] if control else [])
        entries += [(n, f"{s['method']} {s.get('kind', s.get('generator', ''))}".strip()) for n, s in trained.items() if s.get("base") == base]
        for name, label in entries:
            row = rows[name]
            lines.append(f"| {name} | {label} | {_with_interval(row, 'clean_top1', 100)} | {_with_interval(row, 'imagenet_c_top1', 100)} | "
                         f"{_with_interval(row, 'mce')} | {_change(row, reference, 'clean_top1', 100)} | {_change(row, reference, 'mce')} |")
    return lines


def _short(name: str) -> str:
    return SHORT.get(name, name)


def _detection_cell(value: float, bounds: list[float] | None, scale: float = 100.0) -> str:
    text = f"{value * scale:.1f}"
    return f"{text} [{bounds[0] * scale:.1f}, {bounds[1] * scale:.1f}]" if bounds else text


def _signed_cell(value: float, test: dict[str, Any] | None, scale: float = 100.0) -> str:
    bounds = (test or {}).get("interval")
    text = f"{value * scale:+.1f}"
    if bounds:
        text += f" [{bounds[0] * scale:+.1f}, {bounds[1] * scale:+.1f}]" + ("" if test.get("significant") else " n.s.")
    return text


def gradient_tables(gradients: dict[str, Any]) -> list[str]:
    """Seed 001's detection tables (rows: activations, gradients, their difference; columns:
    each tested distortion averaged over its levels, then the mean), one per metric with
    intervals (accuracy, AUROC), and the other metrics' means."""
    rows = gradients.get("distortions") or {}
    if not rows:
        return []
    names = list(rows)
    mean = gradients["mean"]
    lines = ["", "## Distortion detection: VAE gradients vs activations (seed 001)", "",
             f"Two detectors (the seed's MLP) trained on clean vs `{gradients['train_distortion']}` level {gradients['train_level']}: "
             f"one on the VAE's latent mu ({gradients['features']['activations']} values), one on its weight gradients "
             f"({gradients['features']['gradients']} values: KLD w.r.t. the last encoder conv, BCE w.r.t. the `{gradients['bce_layer']}` "
             f"decoder layer, normalise `{gradients['normalise']}`), inputs standardised: {str(gradients['standardise']).lower()}. "
             "Tested on the clean test set against every other distortion, each averaged over its levels, on balanced sets; "
             "distorted = positive. Percent; [low, high]: 95 % paired bootstrap interval over the test images "
             f"({gradients['bootstrap']} resamples); `n.s.`: the difference's interval contains 0.", ""]
    for metric, title in (("auroc", "AUROC"), ("accuracy", "Accuracy (threshold 0.5)")):
        lines += [f"### {title}", "", "| features | " + " | ".join(_short(n) for n in names) + " | mean |",
                  "| --- | " + " | ".join("---:" for _ in names) + " | ---: |"]
        for kind in ("activations", "gradients"):
            cells = [_detection_cell(rows[n][kind][metric], (rows[n].get("intervals") or {}).get(kind, {}).get(metric)) for n in names]
            lines.append(f"| {kind} | " + " | ".join(cells) + f" | {_detection_cell(mean[kind][metric], (mean.get('intervals') or {}).get(kind, {}).get(metric))} |")
        cells = [_signed_cell(rows[n]["difference"][metric], (rows[n].get("difference_intervals") or {}).get(metric)) for n in names]
        lines += ["| gradients - activations | " + " | ".join(cells) + f" | {_signed_cell(mean['difference'][metric], (mean.get('difference_intervals') or {}).get(metric))} |", ""]
    better = [n for n in names if (rows[n].get("difference_intervals") or {}).get("auroc", {}).get("significant") and rows[n]["difference"]["auroc"] > 0]
    worse = [n for n in names if (rows[n].get("difference_intervals") or {}).get("auroc", {}).get("significant") and rows[n]["difference"]["auroc"] < 0]
    chance = [kind for kind in ("activations", "gradients") if (gradients.get("detectors") or {}).get(kind, {}).get("val_loss", 0.0) >= CHANCE_BCE]
    if chance:  # a detector that never beat guessing on its own validation set: its test numbers compare nothing
        losses = ", ".join(f"{gradients['detectors'][kind]['val_loss']:.4f}" for kind in chance)
        lines += [f"**Warning:** the {' and the '.join(chance)} detector{'s' if len(chance) > 1 else ''} kept a validation loss of "
                  f"{losses}, at chance (ln 2 = 0.6931 for balanced "
                  f"classes): {'they' if len(chance) > 1 else 'it'} did not learn to tell clean from `{gradients['train_distortion']}` level "
                  f"{gradients['train_level']}, so the tables above measure untrained decision rules, not the features. "
                  "`python benchmarks/gradient_separability.py` shows which distortions the features carry at all.", ""]
    lines += [f"Gradients have the higher AUROC on {len(gradients.get('gradients_better_auroc') or [])} of {len(names)} distortions; "
              f"the interval excludes 0 for {len(better)} in their favour ({', '.join(better) or 'none'}) and {len(worse)} against them "
              f"({', '.join(worse) or 'none'}).", "",
              "### Every metric, mean over the tested distortions", "",
              "| features | accuracy | AUROC | FPR at 95 % TPR | detection error | AUPR-in | AUPR-out |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind in ("activations", "gradients"):
        lines.append(f"| {kind} | " + " | ".join(f"{mean[kind][m] * 100:.1f}" for m in ("accuracy", "auroc", "fpr95", "detection_error", "aupr_in", "aupr_out")) + " |")
    return lines


def _corr(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def iqa_tables(iqa: dict[str, Any]) -> list[str]:
    """Seed 001's IQA application (the iqa stage's summary): per index the headline SROCC with
    its interval, the pooled SROCC / KROCC / PLCC / RMSE, the published numbers, the paired
    ``gradient - unique`` difference and the SROCC per distortion type."""
    if not iqa:
        return []
    published = (iqa.get("published") or {}).get(iqa["database"]) or {}
    lines = ["", f"## Image quality: UNIQUE (activations) vs its gradient version (seed 001), on `{iqa['database']}`", "",
             f"{iqa['pairs']} pairs, {iqa['references']} reference images, {len(iqa['types'])} distortion types. Scored against "
             f"**{iqa['protocol']}**. Headline: {iqa['headline']}, with a 95 % bootstrap interval over the reference images "
             f"({iqa['bootstrap']['resamples']} resamples). {iqa['fit']}.", ""]
    if iqa.get("skipped_unpaired_sets"):
        lines += [f"Left out: {len(iqa['skipped_unpaired_sets'])} test sets that are not distorted copies of the clean test images by key "
                  f"(released sets): {', '.join(iqa['skipped_unpaired_sets'][:6])}{' ...' if len(iqa['skipped_unpaired_sets']) > 6 else ''}.", ""]
    lines += [
             "| index | " + iqa["headline"] + " | SROCC (pooled) | KROCC | PLCC | RMSE | published SROCC |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, head in iqa["srocc"].items():
        pooled = iqa["indices"][name]
        bounds = f" [{head['interval'][0]:.3f}, {head['interval'][1]:.3f}]" if head.get("interval") else ""
        lines.append(f"| {name} | {_corr(head['value'])}{bounds} | {_corr(pooled['srocc'])} | {_corr(pooled['krocc'])} | {_corr(pooled['plcc'])} | "
                     f"{_corr(pooled['rmse'])} | {_corr((published.get(name) or {}).get('srocc'))} |")
    diff = iqa["gradient_minus_unique"]
    verdict = ("no difference (the interval contains 0)" if diff.get("significant") is False else
               "gradient better" if diff["value"] > 0 else "UNIQUE better") if diff.get("interval") else "no interval (bootstrap: 0)"
    bounds = f" [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}]" if diff.get("interval") else ""
    seed = "; ".join(f"{db}: " + ", ".join(f"{name} {v['srocc']:.3f}" for name, v in rows.items()) for db, rows in (iqa.get("published") or {}).items())
    lines += ["", f"gradient - unique ({iqa['headline']}): {diff['value']:+.3f}{bounds}: {verdict}.", "",
              f"Seed 001's published SROCC against human opinion (not comparable with agreement with the level): {seed}.", "",
              "### SROCC per distortion type", "", "| type | " + " | ".join(iqa["srocc"]) + " |", "| --- | " + " | ".join("---:" for _ in iqa["srocc"]) + " |"]
    for kind, row in iqa["per_type"].items():
        lines.append(f"| {kind} | " + " | ".join(_corr(row[name]["srocc"]) for name in iqa["srocc"]) + " |")
    return lines


TASK_TITLES = {"sr": "Super-resolution", "denoise": "Denoising", "jpeg": "JPEG deblocking"}


def _interval_cell(value: float, bounds: list[float] | None, scale: float = 100.0, digits: int = 1) -> str:
    text = f"{value * scale:.{digits}f}"
    return text + (f" [{bounds[0] * scale:.{digits}f}, {bounds[1] * scale:.{digits}f}]" if bounds else "")


def _gain(entry: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    bounds = entry.get("interval")
    text = f"{entry['value'] * scale:+.{digits}f}" + (f" [{bounds[0] * scale:+.{digits}f}, {bounds[1] * scale:+.{digits}f}]" if bounds else "")
    return text + ("" if entry.get("significant") else " n.s.")


def ra_tables(ra: dict[str, Any]) -> list[str]:
    """Seed 002's tables (the ``ra`` stage's summary): per task, top-1 of every recogniser on
    each processor's output (R = the one the processors were trained with), PSNR / SSIM of
    P's output, each mode's paired difference from ``plain``, and the transfer verdict."""
    if not ra or not ra.get("tasks"):
        return []
    recognisers = ra["recognisers"]
    own = sorted(set(ra.get("trained_with", {}).values()))
    lines = ["", "## Recognition-aware processing (seed 002)", "",
             f"Top-1 (%) of each recogniser on the processed clean test images ({ra['n']} images), with 95 % bootstrap intervals over "
             f"the images; PSNR (dB) and SSIM of P's output against the clean image. The processors were trained with R = "
             f"`{', '.join(own)}`; the other recognisers never saw P. `none`: no processing (bicubic upsampling for super-resolution, "
             "the degraded input otherwise); `clean`: the undegraded images (the ceiling). `ra_transformer`: accuracy on R(T(P(x))), "
             "quality on P(x).", ""]
    for task, table in ra["tasks"].items():
        spec = table["task"]
        setting = {"sr": f"bicubic x{spec.get('scale')}", "denoise": f"sigma {spec.get('sigma')}", "jpeg": f"quality {spec.get('quality')}"}.get(spec.get("name"), "")
        head = [f"{r} (R)" if r in own else r for r in recognisers]
        lines += [f"### {TASK_TITLES.get(spec.get('name'), task)} ({setting})", "", "| P | " + " | ".join(head) + " | PSNR | SSIM |",
                  "| --- | " + " | ".join("---:" for _ in head) + " | ---: | ---: |"]
        for key, row in table["rows"].items():
            label = row["mode"] if key in ("none", "clean") else f"{row['mode']} (`{key}`)"
            quality = [f"{row['psnr']:.2f}" if "psnr" in row else "-", f"{row['ssim']:.3f}" if "ssim" in row else "-"]
            lines.append(f"| {label} | " + " | ".join(_interval_cell(row["top1"][r], row["interval"].get(r)) for r in recognisers) + " | " + " | ".join(quality) + " |")
        gains = [(key, row) for key, row in table["rows"].items() if "vs_plain" in row and key not in ("none", "clean")]
        if gains:
            lines += ["", "Difference from `plain` (paired over images; `n.s.`: the interval contains 0):", "",
                      "| P | " + " | ".join(head) + " | PSNR | SSIM |", "| --- | " + " | ".join("---:" for _ in head) + " | ---: | ---: |"]
            for key, row in gains:
                diff = row["vs_plain"]
                lines.append(f"| {row['mode']} | " + " | ".join(_gain(diff[r]) for r in recognisers) + f" | {_gain(diff['psnr'], 1.0, 2)} | "
                             f"{_gain(diff['ssim'], 1.0, 3)} |")
        for key, verdict in (table.get("transfer") or {}).items():
            mode = table["rows"][key]["mode"]
            mine = verdict.get("on_own_recogniser") or {}
            lines.append("")
            lines.append(f"`{mode}` against `plain`: on R {_gain(mine)} points" if mine else f"`{mode}` against `plain`:")
            lines[-1] += f"; significantly better on {verdict['others_significantly_better']} of the {verdict['others']} other recognisers."
        lines.append("")
    return lines


def markdown(summary: dict[str, Any], evals: dict[str, dict[str, Any]], models: dict[str, Any] | None = None, figures: list[str] | None = None,
             gradients: dict[str, Any] | None = None, iqa: dict[str, Any] | None = None, ra: dict[str, Any] | None = None) -> str:
    """``metrics/report.md``: the figures, the summary table, seed 003's CE table, the
    DeepCorrect and noise-training comparisons (from the ``models:`` entries' methods),
    seed 001's detection tables (``gradients``: the detect stage's summary) and IQA table
    (``iqa``: the iqa stage's summary), seed 002's tables (``ra``: the ra stage's summary) and
    its processors on the benchmark, the DeepCorrect averages."""
    specs = models or {}
    models = summary["models"]
    lines = ["# Results", ""]
    norm = summary["normaliser"]
    lines += [f"Top-1 in percent; CE / mCE relative to `{norm}` = 100 (its own mCE is 100 by definition)." if norm else
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
        lines.append(f"| {name} | {row.get('seeds', 1)} | {_with_interval(row, 'clean_top1', 100)} | {_pct(row['clean_top5'])} | "
                     f"{_with_interval(row, 'imagenet_c_top1', 100)} | {_with_interval(row, 'mce')}{_partial(row, 'mce_over')} | "
                     f"{_with_interval(row, 'relative_mce')}{_partial(row, 'relative_mce_over')} |" + (f" {_cell(row.get('mce_extra'))} |" if extra else ""))
    lines += seed_spread_lines(summary)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({FIGURES}/{name}.png)" for name in figures]
    if any("ce" in row for row in models.values()):
        present = [n for n in SEED_003_ORDER if any(n in row.get("ce", {}) for row in models.values())]
        lines += ["", "## Corruption errors (seed 003's table: normaliser = 1.00)", "",
                  "| Model | mCE | " + " | ".join(SHORT[n] for n in present) + " |",
                  "| --- | ---: | " + " | ".join("---:" for _ in present) + " |"]
        for name, row in models.items():
            if "ce" in row:
                lines.append(f"| {name} | {_ratio(row['mce'])} | " + " | ".join(_ratio(row["ce"].get(n)) for n in present) + " |")
    lines += (deepcorrect_table(summary, specs) + noise_table(summary, specs) + gradient_tables(gradients or {}) + iqa_tables(iqa or {})
              + ra_tables(ra or {}) + ra_benchmark_table(summary, specs) + corruption_tables(summary, specs))
    dc = {name: row["deepcorrect"] for name, row in models.items() if row.get("deepcorrect")}
    if dc:
        lines += ["", "## DeepCorrect distortions (top-1, mean of clean + 6 levels, as in seed 000)", "",
                  "| model | clean | Gaussian blur avg | AWGN avg |", "| --- | ---: | ---: | ---: |"]
        for name, values in dc.items():
            lines.append(f"| {name} | {models[name]['clean_top1']:.4f} | {_cell(values.get('dc_blur'), digits=4)} | {_cell(values.get('dc_awgn'), digits=4)} |")
    lines += ["", "## Top-1 per distortion and level", ""]
    for name, result in evals.items():
        lines += [f"### {name}", "", "| distortion | " + " | ".join(f"level {i}" for i in range(1, 7)) + " | mean |",
                  "| --- |" + " ---: |" * 7]
        for dist, entry in result.get("distortions", {}).items():
            cells = [_pct(entry["levels"].get(str(i), {}).get("top1")) for i in range(1, 7)]
            lines.append(f"| {dist} | " + " | ".join(cells) + f" | {_pct(entry['mean_top1'])} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


CONSTANTS_MEANING = {
    "imagenet": "ImageNet-C's 224 px constants (the imagecorruptions package)",
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


def first_images(folder: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` stored images of a shard folder (uint8 HxWx3), in shard order."""
    images: list[np.ndarray] = []
    for shard in read_info(folder)["shards"]:
        for sample in read_tar(folder / shard["name"]):
            images.append(decode_image(sample[image_field(sample, folder)]))
            if len(images) == count:
                return images
    return images


def showcase_index(folder: Path, count: int = 50) -> int:
    """The figures' example image: the most textured (largest pixel std) of the first ``count``
    test images, so the distortions are visible on it; deterministic."""
    return int(np.argmax([image.std() for image in first_images(folder, count)]))


def figure_makers(params: dict[str, Any], evals: dict[str, dict[str, Any]], summary: dict[str, Any], clean_dir: Path, corrupt_dir: Path,
                  models_dir: Path, deepcorrect_dir: Path) -> dict[str, Callable[[], bytes | None]]:
    """The report's figures (name -> a function drawing its PNG), from the evaluations and the
    stage's inputs; each draws nothing (None) where its inputs are absent."""
    from robust import figures
    from robust.evaluation import built_levels
    from robust.methods import ant, context

    specs = params.get("models") or {}
    methods = {name: (spec or {}).get("method", "baseline") for name, spec in specs.items()}
    suites = (params.get("corrupt") or {}).get("suites") or {}
    ranked = ((((params.get("methods") or {}).get("deepcorrect") or {}).get("ranking") or {}).get("runs")) or {}
    names = [n for suite in suites.values() for n in suite or []]
    test = clean_dir / "test"
    index = showcase_index(test)

    def image(folder: Path) -> np.ndarray:
        return first_images(folder, index + 1)[index]

    showcase = image(test)

    def grid() -> bytes | None:
        distorted: dict[str, dict[int, tuple[np.ndarray, str]]] = {}
        for name in names:
            for level in set(figures.LEVELS_SHOWN) & set(built_levels(corrupt_dir, name)):
                folder = corrupt_dir / name / str(level) / "test"
                info = read_info(folder)
                distorted.setdefault(name, {})[level] = (image(folder), level_caption(info))
        return figures.distortion_grid(showcase, distorted) if distorted else None

    def noise() -> bytes | None:
        samples = {}
        for name, method in methods.items():
            checkpoint = models_dir / name / "checkpoint.pt"
            if method == "ant" and checkpoint.is_file() and "replicate" not in (specs.get(name) or {}):
                ctx, _ = context(params, name, clean_dir)
                samples[name] = ant.noise_samples(ant.AntSettings.from_dict(ctx.settings, f"models.{name}"), checkpoint, showcase)
        return figures.ant_noise(showcase.astype(np.float32) / 255.0, samples) if samples else None

    return {
        "leaderboard": lambda: figures.leaderboard(summary, methods),
        "severity": lambda: figures.severity_panels(evals),
        "ce_heatmap": lambda: figures.ce_heatmap(summary),
        "deepcorrect_curves": lambda: figures.deepcorrect_curves({f"{r['base']} {r['distortion']}": deepcorrect_dir / r["base"] / r["distortion"] / "curves.csv"
                                                                  for r in ranked.values()}),
        "distortions": grid,
        "ant_noise": noise,
    }


def level_caption(info: dict[str, Any]) -> str:
    """A distorted level's caption in the grid: its table value and, for ImageNet-C
    corruptions, the constants table (``released`` for a released set)."""
    if "released" in info:
        return "released"
    distortion = info.get("distortion") or {}
    value, constants = distortion.get("value"), distortion.get("constants")
    if isinstance(value, list):
        value = f"[{value[0]:g}..{value[-1]:g}]" if len(value) > 3 else ",".join(f"{v:g}" for v in value)
    text = f"{value}" if value is not None else ""
    return f"{constants}: {text}" if constants else f"value {text}"


def _inline(text: str) -> str:
    """Escaped text with the report's inline markdown: `code` and **bold**."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


SORT_SCRIPT = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var ascending = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = ascending ? "asc" : "desc";
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[column].textContent.trim(), number = parseFloat(text);
        return text === "-" ? -Infinity : (isNaN(number) ? text.toLowerCase() : number);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x > y ? 1 : x < y ? -1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #eef1f5; cursor: pointer; position: sticky; top: 0; }
th[data-order="asc"]::after { content: " \\25B2"; } th[data-order="desc"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f3f3f3; padding: 0 3px; }
"""


def html_page(markdown_text: str, figures_dir: Path) -> str:
    """``metrics/report.html``: the markdown report as one offline page, tables sortable by
    column, figures inlined as data URLs; nothing is loaded from the network."""
    body: list[str] = []
    lines = markdown_text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            header, rows = block[0], [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in header) + "</tr></thead><tbody>")
            for row in rows:
                cells = "".join(f'<td class="num">{_inline(c)}</td>' if re.fullmatch(r"[-+]?[\d.]+%?|-", c) else f"<td>{_inline(c)}</td>" for c in row)
                body.append(f"<tr>{cells}</tr>")
            body.append("</tbody></table>")
            continue
        figure = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line)
        heading = re.match(r"(#+) (.*)", line)
        if figure:
            data = base64.b64encode((figures_dir / Path(figure.group(2)).name).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(figure.group(1))}" src="data:image/png;base64,{data}"></p>')
        elif heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>robust: results</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + f"\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n")


def write_report(params: dict[str, Any], evals_dir: str | Path, out_dir: str | Path, *, clean_dir: str | Path = "data/shards/clean",
                 corrupt_dir: str | Path = "data/shards/corrupt", models_dir: str | Path = "data/models",
                 deepcorrect_dir: str | Path = "metrics/deepcorrect", correct_dir: str | Path = "data/eval",
                 gradients_summary: str | Path | None = "metrics/gradients/summary.json",
                 iqa_summary: str | Path | None = "metrics/iqa/summary.json", ra_summary: str | Path | None = "metrics/ra/summary.json") -> dict[str, Any]:
    """The ``report`` stage: ``evals_dir/*.json`` -> ``out_dir/summary.json``, ``report.md``,
    ``report.html``, ``figures/*.png`` and ``plots/severity/<distortion>.csv`` (model, level,
    top1); models in the order of the ``models:`` section. Intervals come from the per-image
    correctness in ``correct_dir/<model>/correct.npz`` (models without it get none)."""
    settings = EvaluateParams.from_dict(params.get("evaluate"))
    evals = {p.stem: json.loads(p.read_text()) for p in sorted(Path(evals_dir).glob("*.json"))}
    if not evals:
        raise RobustError(f"No evaluation in {evals_dir}.", "run the evaluate stages first (dvc repro).")
    order = list(params.get("models") or {})
    runs_evals = {name: evals[name] for name in sorted(evals, key=lambda n: (order.index(n) if n in order else len(order), n))}
    groups = run_groups(params.get("models") or {}, list(runs_evals))
    evals = {entry: runs_evals[runs[0]] if len(runs) == 1 else mean_eval([runs_evals[r] for r in runs]) for entry, runs in groups.items()}
    out_dir = Path(out_dir)
    intervals = None
    if settings.bootstrap:
        from robust.bootstrap import intervals as bootstrap_intervals
        from robust.evaluation import load_correct

        correct = {name: load_correct(Path(correct_dir) / name / "correct.npz") for name in runs_evals if (Path(correct_dir) / name / "correct.npz").is_file()}
        intervals = bootstrap_intervals(correct, settings.normaliser, settings.control, settings.bootstrap, settings.bootstrap_seed,
                                        comparison_pairs(params.get("models") or {}, settings.control), groups)
    summary = summarise(evals, settings.normaliser, intervals, settings.control)
    add_seed_spread(summary, runs_evals, groups, settings.normaliser)
    write_json(out_dir / "summary.json", summary)
    from robust.figures import write_figures

    makers = figure_makers(params, evals, summary, Path(clean_dir), Path(corrupt_dir), Path(models_dir), Path(deepcorrect_dir))
    with atomic_dir(out_dir / FIGURES) as folder:
        drawn = write_figures(folder, makers)
    gradients = json.loads(Path(gradients_summary).read_text()) if gradients_summary and Path(gradients_summary).is_file() else None
    iqa = json.loads(Path(iqa_summary).read_text()) if iqa_summary and Path(iqa_summary).is_file() else None
    ra = json.loads(Path(ra_summary).read_text()) if ra_summary and Path(ra_summary).is_file() else None
    text = markdown(summary, evals, params.get("models") or {}, drawn, gradients, iqa, ra)
    (out_dir / "report.md").write_text(text)
    (out_dir / "report.html").write_text(html_page(text, out_dir / FIGURES))
    with atomic_dir(out_dir / "plots" / "severity") as folder:
        for dist, rows in severity_curves(evals).items():
            write_csv(folder / f"{dist}.csv", rows, ["model", "level", "top1"])
    return summary
