"""Seed 004's section: Gaussian / speckle noise augmentation and adversarial noise training
against the control (the base trained as long on clean data)."""

from __future__ import annotations

from typing import Any

from robust.report.cells import change_cell, of_method, with_interval

def noise_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Seed 004's table: clean top-1, mean corrupted top-1 (15 x 5), mCE for the vanilla
    base and every noise / ANT model fine-tuned from it."""
    rows = summary["models"]
    trained = {**of_method(models, "noise"), **of_method(models, "ant")}
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
            lines.append(f"| {name} | {label} | {with_interval(row, 'clean_top1', 100)} | {with_interval(row, 'imagenet_c_top1', 100)} | "
                         f"{with_interval(row, 'mce')} | {change_cell(row, reference, 'clean_top1', 100)} | {change_cell(row, reference, 'mce')} |")
    return lines
