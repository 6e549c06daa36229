"""The report's figures, its offline page and the offline template of ``dvc plots show``."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from robust.report import figures
from robust.report.page import html_page
from robust.report import markdown
from robust.report.summary import summarise

LEVELS = [0.6, 0.5, 0.4, 0.3, 0.2]


def _result(clean, fog, snow):
    distortions = {name: {"levels": {str(i + 1): {"top1": v, "top5": 1.0} for i, v in enumerate(values)}, "mean_top1": sum(values) / 5}
                   for name, values in (("fog", fog), ("snow", snow))}
    return {"clean": {"top1": clean, "top5": 1.0, "error": 1 - clean}, "distortions": distortions}


@pytest.fixture()
def evals():
    return {"net": _result(0.9, LEVELS, [0.7] * 5), "tuned": _result(0.85, [0.8] * 5, [0.6] * 5), "alex": _result(0.6, [0.3] * 5, [0.2] * 5)}


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def test_figures_are_pngs_of_the_expected_size_and_repeat_byte_for_byte(evals):
    summary = summarise(evals, "alex")
    methods = {"net": "baseline", "tuned": "finetune", "alex": "baseline"}
    makers = {
        "leaderboard": lambda: figures.leaderboard(summary, methods),
        "severity": lambda: figures.severity_panels(evals),
        "ce_heatmap": lambda: figures.ce_heatmap(summary),
        "distortions": lambda: figures.distortion_grid(np.zeros((8, 8, 3), np.uint8), {"fog": {1: (np.full((8, 8, 3), 99, np.uint8), "severity 1")}}),
        "ant_noise": lambda: figures.ant_noise(np.zeros((8, 8, 3)), {"ant1x1": (np.ones((8, 8, 3)), np.ones((8, 8, 3)) / 2)}),
    }
    first = {name: make() for name, make in makers.items()}
    assert png_size(first["leaderboard"]) == (800, int(round((0.35 * 3 + 1.2) * figures.DPI)))  # figure size x dpi, 3 models
    assert png_size(first["severity"]) == (6 * 220, int(round(1.9 * 100 + 80)))  # one row of 6 panels for 2 distortions
    for name, data in first.items():
        assert png_size(data)[0] > 100, name
        assert data == makers[name](), f"{name} differs on a second draw"  # no timestamps, fixed fonts
        assert b"Software" not in data and b"matplotlib" not in data.lower()


def test_figures_with_nothing_to_draw_are_skipped(tmp_path):
    summary = {"normaliser": None, "models": {"net": {"mce": None}}}
    written = figures.write_figures(tmp_path, {"leaderboard": lambda: figures.leaderboard(summary, {}), "curves": lambda: figures.deepcorrect_curves({})})
    assert written == [] and not list(tmp_path.iterdir())


def test_report_page_is_one_offline_file_with_sortable_tables_and_inlined_figures(evals, tmp_path):
    summary = summarise(evals, "alex")
    (tmp_path / "leaderboard.png").write_bytes(figures.leaderboard(summary, {}))
    page = html_page(markdown(summary, evals, {}, ["leaderboard"]), tmp_path)
    assert page.count("<table>") >= 2 and "<th>mCE</th>" in page and 'class="num"' in page
    assert re.search(r'<img alt="leaderboard" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">', page)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)  # nothing loaded from the network
    assert "<script>" in page and "addEventListener(\"click\"" in page  # the sort handler, inline


def test_offline_plots_template_inlines_vega_and_keeps_out_the_cdn_scripts():
    template = figures.offline_plots_template()
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC puts its CDN tags only into {scripts}
    assert not re.search(r"<script[^>]*\bsrc\s*=", template)
    assert "vegaEmbed" in template and len(template) > 100_000  # the libraries themselves, inlined
