"""Seed 001's sections: gradient against activation features for distortion detection (the
detect stage's summary) and the gradient image-quality index against UNIQUE (the iqa stage's)."""

from __future__ import annotations

import math
from typing import Any

from robust.report.cells import corr_cell, detection_cell, short_name, signed_cell

CHANCE_BCE = 0.99 * math.log(2)  # a balanced detector's validation BCE at or above this learned (almost) nothing


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
             f"({gradients['bootstrap']} resamples); `n.s.`: the difference's interval contains 0."
             + (f" Left out as the training operation under another name (not an unseen type): "
                f"{', '.join(f'`{n}`' for n in gradients['same_operation_left_out'])}." if gradients.get("same_operation_left_out") else ""), ""]
    for metric, title in (("auroc", "AUROC"), ("accuracy", "Accuracy (threshold 0.5)")):
        lines += [f"### {title}", "", "| features | " + " | ".join(short_name(n) for n in names) + " | mean |",
                  "| --- | " + " | ".join("---:" for _ in names) + " | ---: |"]
        for kind in ("activations", "gradients"):
            cells = [detection_cell(rows[n][kind][metric], (rows[n].get("intervals") or {}).get(kind, {}).get(metric)) for n in names]
            lines.append(f"| {kind} | " + " | ".join(cells) + f" | {detection_cell(mean[kind][metric], (mean.get('intervals') or {}).get(kind, {}).get(metric))} |")
        cells = [signed_cell(rows[n]["difference"][metric], (rows[n].get("difference_intervals") or {}).get(metric)) for n in names]
        lines += ["| gradients - activations | " + " | ".join(cells) + f" | {signed_cell(mean['difference'][metric], (mean.get('difference_intervals') or {}).get(metric))} |", ""]
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
              "FPR at 95 % TPR twice: the seed's own (`cal_metric.py`: 95 % of the clean images kept, the share of distorted ones passed as "
              "clean) and OpenOOD's (95 % of the distorted images caught, the share of clean ones flagged).", "",
              "| features | accuracy | AUROC | FPR95 (seed's: clean positive) | FPR95 (OpenOOD: distorted positive) | detection error | AUPR-in | AUPR-out |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind in ("activations", "gradients"):
        lines.append(f"| {kind} | " + " | ".join("-" if m not in mean[kind] else f"{mean[kind][m] * 100:.1f}"
                                                 for m in ("accuracy", "auroc", "fpr95_seed", "fpr95", "detection_error", "aupr_in", "aupr_out")) + " |")
    return lines


def _patches_sentence(iqa: dict[str, Any]) -> str:
    """How many 8 x 8 patches each image gives at the index's scale (each image's own whitening
    estimates a 192 x 192 covariance from them)."""
    count = iqa.get("patches_per_image") or {}
    if not count:
        return ""
    amount = f"{count['min']}" if count["min"] == count["max"] else f"{count['min']} to {count['max']}"
    return (f" Each image gives {amount} 8 x 8 patches at scale {iqa['index_settings']['scale']:g}"
            + (" (fewer than 192: its own whitening rests on a rank-deficient covariance)." if count["min"] < 192 else "."))


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
             f"({iqa['bootstrap']['resamples']} resamples). {iqa['fit']}.{_patches_sentence(iqa)}", ""]
    lines += [
             "| index | " + iqa["headline"] + " | SROCC (pooled) | KROCC | PLCC | RMSE | published SROCC |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, head in iqa["srocc"].items():
        pooled = iqa["indices"][name]
        bounds = f" [{head['interval'][0]:.3f}, {head['interval'][1]:.3f}]" if head.get("interval") else ""
        lines.append(f"| {name} | {corr_cell(head['value'])}{bounds} | {corr_cell(pooled['srocc'])} | {corr_cell(pooled['krocc'])} | {corr_cell(pooled['plcc'])} | "
                     f"{corr_cell(pooled['rmse'])} | {corr_cell((published.get(name) or {}).get('srocc'))} |")
    diff = iqa["gradient_minus_unique"]
    verdict = ("no difference (the interval contains 0)" if diff.get("significant") is False else
               "gradient better" if diff["value"] > 0 else "UNIQUE better") if diff.get("interval") else "no interval (bootstrap: 0)"
    bounds = f" [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}]" if diff.get("interval") else ""
    seed = "; ".join(f"{db}: " + ", ".join(f"{name} {v['srocc']:.3f}" for name, v in rows.items()) for db, rows in (iqa.get("published") or {}).items())
    lines += ["", f"gradient - unique ({iqa['headline']}): {diff['value']:+.3f}{bounds}: {verdict}.", "",
              f"Seed 001's published SROCC against human opinion (not comparable with agreement with the level): {seed}.", "",
              "### SROCC per distortion type", "", "| type | " + " | ".join(iqa["srocc"]) + " |", "| --- | " + " | ".join("---:" for _ in iqa["srocc"]) + " |"]
    for kind, row in iqa["per_type"].items():
        lines.append(f"| {kind} | " + " | ".join(corr_cell(row[name]["srocc"]) for name in iqa["srocc"]) + " |")
    return lines
