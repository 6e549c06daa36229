"""Seed 002's sections: every recognition-aware processor on several recognisers with PSNR /
SSIM (the ra stage's summary), and ``P -> R`` on the corruption benchmark beside R alone."""

from __future__ import annotations

from typing import Any

from robust.report.cells import change_cell, gain_cell, interval_cell, of_method, with_interval

def ra_benchmark_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """``P -> R`` on the whole corruption benchmark beside R alone: clean top-1, corrupted
    top-1, mCE, and the paired ``P -> R`` minus R differences."""
    rows = summary["models"]
    pairs = [(name, spec["base"]) for name, spec in of_method(models, "ra").items() if name in rows and spec.get("base") in rows]
    if not pairs:
        return []
    lines = ["", "## Recognition-aware processors in front of R, on the corruption benchmark (seed 002, beyond the seed)", "",
             "`P -> R` is scored like any classifier: P restores every test image (super-resolution: the image is first downsampled "
             "as in training), R classifies. Differences from R alone are paired over the test images.", "",
             "| model | clean top-1 | corrupted top-1 (15 x 5) | mCE | clean top-1 - R | mCE - R |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for base in dict.fromkeys(b for _, b in pairs):
        lines.append(f"| {base} (R alone) | {with_interval(rows[base], 'clean_top1', 100)} | {with_interval(rows[base], 'imagenet_c_top1', 100)} | "
                     f"{with_interval(rows[base], 'mce')} | - | - |")
    for name, base in pairs:
        pair = summary["pairs"].get(f"{name} - {base}") or {}
        row = rows[name]
        lines.append(f"| {name} | {with_interval(row, 'clean_top1', 100)} | {with_interval(row, 'imagenet_c_top1', 100)} | "
                     f"{with_interval(row, 'mce')} | {change_cell(row, rows[base], 'clean_top1', 100, pair.get('clean_top1'))} | "
                     f"{change_cell(row, rows[base], 'mce', 1, pair.get('mce'))} |")
    return lines


TASK_TITLES = {"sr": "Super-resolution", "denoise": "Denoising", "jpeg": "JPEG deblocking"}


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
            lines.append(f"| {label} | " + " | ".join(interval_cell(row["top1"][r], row["interval"].get(r)) for r in recognisers) + " | " + " | ".join(quality) + " |")
        gains = [(key, row) for key, row in table["rows"].items() if "vs_plain" in row and key not in ("none", "clean")]
        if gains:
            lines += ["", "Difference from `plain` (paired over images; `n.s.`: the interval contains 0):", "",
                      "| P | " + " | ".join(head) + " | PSNR | SSIM |", "| --- | " + " | ".join("---:" for _ in head) + " | ---: | ---: |"]
            for key, row in gains:
                diff = row["vs_plain"]
                lines.append(f"| {row['mode']} | " + " | ".join(gain_cell(diff[r]) for r in recognisers) + f" | {gain_cell(diff['psnr'], 1.0, 2)} | "
                             f"{gain_cell(diff['ssim'], 1.0, 3)} |")
        for key, verdict in (table.get("transfer") or {}).items():
            mode = table["rows"][key]["mode"]
            mine = verdict.get("on_own_recogniser") or {}
            lines.append("")
            lines.append(f"`{mode}` against `plain`: on R {gain_cell(mine)} points" if mine else f"`{mode}` against `plain`:")
            lines[-1] += f"; significantly better on {verdict['others_significantly_better']} of the {verdict['others']} other recognisers."
        lines.append("")
    return lines
