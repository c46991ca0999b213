"""The HTML report's pieces on hand-made run records: confidence intervals, table, figures."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from fake2real.report import figures
from fake2real.report.cells import intervals
from fake2real.report.html import Figure, render, results_table
from fake2real.report.runs import RunRecord, SweepRuns
from fake2real.stats import Interval, interval


def record(ratio, mixture, method, seed, wga, leakage=None, groups=None):
    metrics = {"test/worst_group_accuracy": wga, "test/balanced_accuracy": min(1.0, wga + 0.1)}
    if leakage is not None:
        metrics["probe/g_leakage_auroc"] = leakage
    for name, value in (groups or {}).items():
        metrics[f"test/group/{name}/accuracy"] = value
    return RunRecord(f"{mixture}-{method}-{ratio}-{seed}", ratio, mixture, method, seed, metrics)


def test_interval_is_the_student_t_interval_of_the_mean():
    # mean 0.7, sample std 0.2, t(0.975, 2) = 4.302653 → half-width 4.302653 · 0.2 / √3.
    found = interval([0.5, 0.7, 0.9])
    assert found.mean == pytest.approx(0.7)
    assert found.high - found.mean == pytest.approx(4.302653 * 0.2 / math.sqrt(3), rel=1e-6)
    assert found.mean - found.low == pytest.approx(found.high - found.mean)
    single = interval([0.4])
    assert (single.low, single.high, single.n) == (0.4, 0.4, 1)
    assert interval([0.2, float("nan"), 0.4]).n == 2
    assert interval([float("nan")]) is None and interval([]) is None


def test_cells_group_seeds_and_skip_missing_metrics():
    records = [record(0.9, "ffr", "erm", s, w, leakage=leak) for s, w, leak in ((0, 0.6, 0.9), (1, 0.8, None))]
    records.append(record(0.99, "ffr", "erm", 0, 0.1))
    wga = intervals(records, "test/worst_group_accuracy")
    assert wga[(0.9, "ffr", "erm")].mean == pytest.approx(0.7) and wga[(0.9, "ffr", "erm")].n == 2
    assert wga[(0.99, "ffr", "erm")].n == 1
    assert intervals(records, "probe/g_leakage_auroc") == {(0.9, "ffr", "erm"): Interval(0.9, 0.9, 0.9, 1)}
    # A probe with too few samples reports NaN: such a cell is left out, not an error.
    records.append(record(0.99, "ffr", "erm", 1, 0.2, leakage=float("nan")))
    assert (0.99, "ffr", "erm") not in intervals(records, "probe/g_leakage_auroc")


def test_results_table_shows_mean_and_ci_half_width_per_cell():
    records = [record(0.95, "usb", "groupdro", s, w) for s, w in ((0, 0.5), (1, 0.7), (2, 0.9))]
    records.append(record(0.95, "none", "erm", 0, 0.25))
    table = results_table(records)
    assert f"<td>0.700 ± {4.302653 * 0.2 / math.sqrt(3):.3f}</td>" in table
    assert "<td>0.250</td>" in table and "<td>usb</td><td>groupdro</td><td>3</td>" in table
    assert table.count("<td>–</td>") == 2 * 3  # no val WGA / synthetic WGA / leakage in these records


def _png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_figures_render_several_ratios_mixtures_and_groups():
    groups = {"y0_b0": 1.0, "y0_b1": 0.2, "y1_b0": 0.3, "y1_b1": 0.9}
    records = [
        record(r, m, k, s, 0.1 * s + r / 2, leakage=0.6 + 0.1 * s, groups=groups)
        for r in (0.95, 0.99) for m in ("none", "ffr") for k in ("erm", "groupdro") for s in (0, 1, 2)
    ]
    assert figures.group_names(records) == ["y0_b0", "y0_b1", "y1_b0", "y1_b1"]
    for png in (figures.wga_vs_bias_ratio(records), figures.group_heatmaps(records), figures.g_leakage(records)):
        width, height = _png_size(png)
        assert width > 300 and height > 200


def test_render_embeds_every_figure_with_its_id():
    records = [record(0.9, "ffr", "erm", 0, 0.5)]
    png = figures.wga_vs_bias_ratio(records)
    page = render(SweepRuns("abc123", "sweep-x", "FINISHED", records), [Figure("wga-vs-bias-ratio", "WGA", png, "c")], "sqlite:///x.db")
    assert '<figure id="wga-vs-bias-ratio">' in page and 'class="figure"' in page
    assert page.count("data:image/png;base64,") == 1 and "sweep-x" in page and 'id="results-table"' in page


def test_a_figure_marked_first_comes_before_the_results_table_and_the_others_after():
    records = [record(0.9, "ffr", "erm", 0, 0.5)]
    png = figures.wga_vs_bias_ratio(records)
    built = [Figure("later", "Later", png, "c"), Figure("regime-map", "Map", png, "c", first=True)]
    page = render(SweepRuns("abc123", "sweep-x", "FINISHED", records), built, "sqlite:///x.db")
    assert page.index('<figure id="regime-map">') < page.index('id="results-table"') < page.index('<figure id="later">')
