"""The report's figures: static PNGs drawn with matplotlib (headless), and an offline page.

Written by the ``report`` stage to ``metrics/figures/`` and linked from ``metrics/report.md``
and ``metrics/report.html``:

* ``leaderboard.png``: every model's mCE, sorted, coloured by method;
* ``severity.png``: top-1 against severity, one small panel per distortion, all models;
* ``ce_heatmap.png``: per-corruption CE relative to the normaliser (models x corruptions);
* ``deepcorrect_curves.png``: DeepCorrect's ideal-correction curves (when ranked);
* ``distortions.png``: one test image under every distortion at levels 1, 3 and 5, titled with
  the table value that made it (ImageNet-C corruptions: the constants table's name and value,
  ``released`` for a released set);
* ``ant_noise.png``: what each ANT model's learned noise looks like, beside Gaussian noise
  of the same L2 norm (when an ANT model was trained).

Deterministic: the same inputs give byte-identical PNGs (fixed size, dpi and font, no
software / date metadata), so an unchanged rerun keeps ``dvc status`` clean.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robust.data.shards import decode_image, image_field, read_info, read_tar
from robust.distortions import IMAGENET_C

DPI = 100
LEVELS_SHOWN = (1, 3, 5)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8})
    return plt


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes without metadata that would change between runs."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def method_colours(names: list[str], methods: dict[str, str]) -> dict[str, Any]:
    """One colour per method (tab10), in the order the methods first appear in ``names``."""
    plt = _pyplot()
    order = list(dict.fromkeys(methods.get(n, "baseline") for n in names))
    palette = plt.get_cmap("tab10")
    return {name: palette(order.index(methods.get(name, "baseline")) % 10) for name in names}


def leaderboard(summary: dict[str, Any], methods: dict[str, str]) -> bytes | None:
    """mCE per model, best (lowest) at the top, coloured by method, with each row's 95 %
    interval (over images, and over training seeds for rows run at several: their seed count
    is in the label)."""
    models = summary["models"]
    rows = sorted(((name, row["mce"]) for name, row in models.items() if row.get("mce") is not None), key=lambda r: r[1])
    if not rows:
        return None
    plt = _pyplot()
    colours = method_colours([n for n, _ in rows], methods)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    names, values = [n for n, _ in rows][::-1], [v for _, v in rows][::-1]
    bounds = [(models[n].get("intervals") or {}).get("mce") or [v, v] for n, v in zip(names, values)]
    errors = np.array([[v - low for v, (low, _) in zip(values, bounds)], [high - v for v, (_, high) in zip(values, bounds)]])
    labels = [f"{n} ({models[n]['seeds']} seeds)" if models[n].get("seeds", 1) > 1 else n for n in names]
    ax.barh(labels, values, color=[colours[n] for n in names], xerr=np.clip(errors, 0, None), error_kw={"elinewidth": 0.8, "capsize": 2})
    for y, (value, (_, high)) in enumerate(zip(values, bounds)):
        ax.text(max(value, high) + 0.5, y, f"{value:.1f}", va="center", fontsize=7)
    ax.axvline(100, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"mCE with its 95 % interval (normaliser {summary.get('normaliser')} = 100; lower is better)")
    ax.set_xlim(0, max(105, max(max(v, b[1]) for v, b in zip(values, bounds)) * 1.12))
    handles = {methods.get(n, "baseline"): colours[n] for n in names}
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=c) for c in handles.values()], list(handles), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, title="method")
    ax.set_title("Leaderboard: mean corruption error over the 15 ImageNet-C corruptions")
    fig.tight_layout()
    return png_bytes(fig)


def severity_panels(evals: dict[str, dict[str, Any]]) -> bytes | None:
    """Top-1 against level (0 = clean), one panel per distortion, one line per model."""
    distortions = list(dict.fromkeys(d for result in evals.values() for d in result.get("distortions", {})))
    if not distortions:
        return None
    plt = _pyplot()
    columns = 6
    rows = -(-len(distortions) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 1.9 * rows + 0.8), sharey=True, squeeze=False)
    colours = dict(zip(evals, plt.get_cmap("tab20")(np.linspace(0, 1, max(len(evals), 2)))))
    for ax, dist in zip(axes.flat, distortions):
        for model, result in evals.items():
            entry = result.get("distortions", {}).get(dist)
            if entry is None:
                continue
            levels = sorted(int(k) for k in entry["levels"])
            ax.plot([0, *levels], [result["clean"]["top1"], *(entry["levels"][str(k)]["top1"] for k in levels)],
                    marker="o", ms=2, lw=1, color=colours[model], label=model)
        ax.set_title(dist)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(distortions):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7, frameon=False)
    fig.suptitle("Top-1 against severity (level 0 = clean)")
    fig.tight_layout(rect=(0, 0.05 + 0.01 * (len(labels) // 6), 1, 0.97))
    return png_bytes(fig)


def ce_heatmap(summary: dict[str, Any]) -> bytes | None:
    """Per-corruption CE (normaliser = 100) as a models x corruptions heat map."""
    models = [name for name, row in summary["models"].items() if row.get("ce")]
    if not models:
        return None
    corruptions = [c for c in IMAGENET_C if any(c in summary["models"][m]["ce"] for m in models)]
    values = np.array([[summary["models"][m]["ce"].get(c, np.nan) for c in corruptions] for m in models], dtype=float)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.55 * len(corruptions) + 2.5, 0.35 * len(models) + 1.6))
    image = ax.imshow(values, cmap="RdYlGn_r", vmin=min(50.0, np.nanmin(values)), vmax=max(110.0, np.nanmax(values)), aspect="auto")
    ax.set_xticks(range(len(corruptions)), corruptions, rotation=60, ha="right")
    ax.set_yticks(range(len(models)), models)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label=f"CE (normaliser {summary.get('normaliser')} = 100)")
    ax.set_title("Corruption error per corruption (lower is better)")
    fig.tight_layout()
    return png_bytes(fig)


def deepcorrect_curves(curve_files: dict[str, Path]) -> bytes | None:
    """Ideal-correction curves: top-1 when the top p % of a layer's ranked filters get their
    clean activations, one panel per distortion, one line per layer."""
    tables = {name: list(csv.DictReader(open(path))) for name, path in curve_files.items() if Path(path).is_file()}
    tables = {name: rows for name, rows in tables.items() if rows}
    if not tables:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3), squeeze=False, sharey=True)
    for ax, (name, rows) in zip(axes.flat, tables.items()):
        x = [float(r["percent"]) for r in rows]
        for layer in [k for k in rows[0] if k != "percent"]:
            ax.plot(x, [float(r[layer]) for r in rows], marker="o", ms=3, label=layer)
        ax.set_title(f"{name}: ideal correction")
        ax.set_xlabel("% of ranked filters given clean activations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes.flat[0].set_ylabel("top-1 (mean over levels)")
    fig.tight_layout()
    return png_bytes(fig)


def distortion_grid(clean: np.ndarray, distorted: dict[str, dict[int, tuple[np.ndarray, str]]]) -> bytes | None:
    """One image clean and under every distortion at the levels shown; ``distorted[name][level]``
    is (image, the constant that made it)."""
    if not distorted:
        return None
    plt = _pyplot()
    columns = 2 * (1 + len(LEVELS_SHOWN))  # two distortions per row
    names = list(distorted)
    rows = -(-len(names) // 2)
    fig, axes = plt.subplots(rows, columns, figsize=(1.25 * columns, 1.45 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index, name in enumerate(names):
        row, offset = index // 2, (index % 2) * (1 + len(LEVELS_SHOWN))
        axes[row, offset].imshow(clean, interpolation="nearest")
        axes[row, offset].set_title(f"{name}\nclean", fontsize=6)
        for k, level in enumerate(LEVELS_SHOWN, start=1):
            if level in distorted[name]:
                image, constant = distorted[name][level]
                axes[row, offset + k].imshow(image, interpolation="nearest")
                axes[row, offset + k].set_title(f"level {level}\n{constant}", fontsize=6)
    fig.suptitle("One test image under every distortion (levels 1, 3, 5)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return png_bytes(fig)


def ant_noise(image: np.ndarray, samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes | None:
    """Per ANT model: the image plus its learned noise, and plus Gaussian noise of the same
    L2 norm; ``samples[model] = (learned, gaussian)``, both HxWx3 in [0, 1]."""
    if not samples:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(samples), 3, figsize=(5.4, 1.9 * len(samples) + 0.3), squeeze=False)
    for row, (model, (learned, gaussian)) in enumerate(samples.items()):
        for ax, picture, title in zip(axes[row], (image, learned, gaussian), ("clean", f"{model}: learned noise", "Gaussian, same L2 norm")):
            ax.imshow(np.clip(picture, 0, 1), interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


def write_figures(out_dir: Path, makers: dict[str, Callable[[], bytes | None]]) -> list[str]:
    """Write each maker's PNG as ``out_dir/<name>.png`` (skipping those with nothing to draw);
    returns the names written."""
    written = []
    for name, make in makers.items():
        data = make()
        if data is not None:
            (out_dir / f"{name}.png").write_bytes(data)
            written.append(name)
    return written


VEGA_LITE_VERSION = "5.21"  # DVC's plot templates are Vega-Lite 5 specs


def offline_plots_template() -> str:
    """An HTML template for ``dvc plots show`` that renders with no network: Vega, Vega-Lite
    and Vega-Embed are inlined, bundled by the ``vl-convert-python`` package (nothing is
    downloaded, and no third-party code is kept in this repository). DVC fills
    ``{plot_divs}``; the template has no ``{scripts}`` placeholder, so DVC's CDN script tags
    are left out."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    if "</script" in bundle:  # would end the inline script early
        raise RuntimeError("the Vega bundle contains '</script'; it cannot be inlined")
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>DVC plots (offline)</title>\n"
            f"<script type=\"text/javascript\">\n{bundle}\n</script>\n"
            "<style>table { border-spacing: 15px; } body { font-family: sans-serif; }</style>\n"
            "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n")


# -- what the report stage draws, from its inputs ---------------------------------------------
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
    from robust.data.shards import built_levels
    from robust.methods import ant, context

    specs = params.get("models") or {}
    methods = {name: (spec or {}).get("method", "baseline") for name, spec in specs.items()}
    suites = (params.get("corrupt") or {}).get("suites") or {}
    ranked = ((((params.get("methods") or {}).get("deepcorrect") or {}).get("ranking") or {}).get("runs")) or {}
    names = [n for suite in suites.values() for n in suite or []]
    test = clean_dir / "test"
    index = showcase_index(test)

    def image(folder: Path) -> np.ndarray | None:
        images = first_images(folder, index + 1)
        return images[index] if len(images) > index else None  # a released set may hold fewer images than the clean split

    showcase = image(test)

    def grid() -> bytes | None:
        distorted: dict[str, dict[int, tuple[np.ndarray, str]]] = {}
        for name in names:
            for level in set(LEVELS_SHOWN) & set(built_levels(corrupt_dir, name)):
                folder = corrupt_dir / name / str(level) / "test"
                shown = image(folder)
                if shown is not None:  # not another image's corruption beside the showcase
                    distorted.setdefault(name, {})[level] = (shown, level_caption(read_info(folder)))
        return distortion_grid(showcase, distorted) if distorted else None

    def noise() -> bytes | None:
        samples = {}
        for name, method in methods.items():
            checkpoint = models_dir / name / "checkpoint.pt"
            if method == "ant" and checkpoint.is_file() and "replicate" not in (specs.get(name) or {}):
                ctx, _ = context(params, name, clean_dir)
                samples[name] = ant.noise_samples(ant.AntSettings.from_dict(ctx.settings, f"models.{name}"), checkpoint, showcase)
        return ant_noise(showcase.astype(np.float32) / 255.0, samples) if samples else None

    return {
        "leaderboard": lambda: leaderboard(summary, methods),
        "severity": lambda: severity_panels(evals),
        "ce_heatmap": lambda: ce_heatmap(summary),
        "deepcorrect_curves": lambda: deepcorrect_curves({f"{r['base']} {r['distortion']}": deepcorrect_dir / r["base"] / r["distortion"] / "curves.csv"
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
