"""Seed 003's section: corruption-augmented fine-tuning across architectures (_b / _c runs,
held-out protocol, CE table, paired differences, and whether clean accuracy ranks the
architectures as mCE does)."""

from __future__ import annotations

import math
from typing import Any

from robust.report.cells import SHORT, change_cell, of_method, pair_cell, percent, ratio_cell, with_interval
from robust.report.summary import SEED_003_ORDER

def clean_partner(models: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """The ``_b`` run a seed 003 ``_c`` entry is compared with: same base, clean data."""
    return next((n for n, s in of_method(models, "corruption").items() if s.get("base") == spec.get("base") and s.get("data", "clean") == "clean"), None)


def seed_protocol_partner(models: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """The seed-protocol ``_c`` run a ``held_out`` entry is compared with: same base."""
    return next((n for n, s in of_method(models, "corruption").items()
                 if s.get("base") == spec.get("base") and s.get("data") == "corrupted" and s.get("protocol", "seed") == "seed"), None)


def corruption_pairs(models: dict[str, Any]) -> list[tuple[str, str]]:
    """Seed 003's paired comparisons: every ``_c`` run minus its ``_b`` run, and every
    ``held_out`` run minus the seed-protocol run of the same architecture."""
    pairs = []
    for name, spec in of_method(models, "corruption").items():
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
    runs = {n: s for n, s in of_method(models, "corruption").items() if n in rows}
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
            changes = [f"{change_cell(row, rows[partner], 'clean_top1', 100, pair.get('clean_top1'))} vs `{partner}`",
                       f"{change_cell(row, rows[partner], 'mce', 1, pair.get('mce'))} vs `{partner}`"]
        params = (row.get("parameters") or {}).get("total")
        lines.append(f"| {name} | `{spec.get('base')}` | {_label(spec)} | {params if params is not None else '-'} | "
                     f"{with_interval(row, 'clean_top1', 100)} | {percent(row['clean_top5'])} | {with_interval(row, 'mce')} | {changes[0]} | {changes[1]} |")
    held = [(n, seed_protocol_partner(models, s)) for n, s in runs.items() if s.get("data") == "corrupted" and s.get("protocol", "seed") == "held_out"]
    held = [(a, b) for a, b in held if b in rows and ((pairs.get(f"{a} - {b}") or {}).get("mce") or {}).get("interval")]
    if held:
        lines += ["", "Held-out against seed protocol (mCE, paired 95 % interval): " + "; ".join(pair_cell(summary, f"{a} - {b}") for a, b in held) + "."]
    present = [n for n in SEED_003_ORDER if any(n in rows[r].get("ce", {}) for r in runs)]
    if norm and present:
        lines += ["", f"Corruption errors in seed 003's shape (`{norm}` = 1.00):", "",
                  "| Model | mCE | " + " | ".join(SHORT[n] for n in present) + " |", "| --- | ---: | " + " | ".join("---:" for _ in present) + " |",
                  f"| {norm} | 1.00 | " + " | ".join("1.00" for _ in present) + " |"]
        for name in runs:
            if "ce" in rows[name]:
                lines.append(f"| {name} | {ratio_cell(rows[name]['mce'])} | " + " | ".join(ratio_cell(rows[name]["ce"].get(n)) for n in present) + " |")
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
