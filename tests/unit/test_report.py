"""The sweep's results table and chart: per bias ratio, mean ± 95 % interval over seeds, missing values shown, and whether the best
cell is separated from the runner-up."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from PIL import Image

from fake2real.report.cells import intervals, seed_counts
from fake2real.report.table import chart, markdown


@dataclass
class Result:
    bias_ratio: float
    mixture: str
    method: str
    seed: int
    run_id: str = "r"
    metrics: dict = field(default_factory=dict)
    point: dict = field(default_factory=dict)


def _results():
    out = []
    for ratio in (0.95, 0.99):
        for mixture, method in (("none", "erm"), ("ffr", "erm"), ("ffr", "dfr")):
            for seed, wga in ((0, 0.2), (1, 0.4)):
                metrics = {"test/worst_group_accuracy": wga, "test/balanced_accuracy": 0.9, "val/worst_group_accuracy": 0.5}
                if mixture == "ffr":
                    metrics["probe/g_leakage_auroc"] = 0.75
                out.append(Result(ratio, mixture, method, seed, metrics=metrics))
    return out


def test_cells_group_by_ratio_mixture_method():
    seeds = seed_counts(_results())
    assert len(seeds) == 6 and set(seeds.values()) == {2}
    assert list(seeds)[:3] == [(0.95, "none", "erm"), (0.95, "ffr", "erm"), (0.95, "ffr", "dfr")]
    wga = intervals(_results(), "test/worst_group_accuracy")[(0.95, "none", "erm")]
    assert (wga.mean, wga.n) == (pytest.approx(0.3), 2)
    # Seeds 0.2 and 0.4: half-width t(0.975, 1) · 0.1414 / √2 = 1.2706 (by hand), so the two
    # values, not only their mean, are what the cell holds.
    assert (wga.low, wga.high) == (pytest.approx(0.3 - 1.2706, abs=1e-4), pytest.approx(0.3 + 1.2706, abs=1e-4))
    # 'none' runs have no probe value: their cells are left out, not shown as an interval
    assert set(intervals(_results(), "probe/g_leakage_auroc")) == {c for c in seeds if c[1] == "ffr"}


def test_markdown_sections_per_ratio_with_mean_interval_and_missing():
    text = markdown(_results(), "t")
    assert "### bias ratio 0.95" in text and "### bias ratio 0.99" in text
    # mean 0.3, 95 % half-width t(0.975, 1) · 0.1414 / √2 = 12.706 · 0.1 = 1.271 (by hand);
    # 'none' runs have no probe value: shown as a dash
    assert "| none | erm | 2 | 0.300 ± 1.271 | 0.900 ± 0.000 | 0.500 ± 0.000 | – | – |" in text
    assert "| ffr | dfr | 2 | 0.300 ± 1.271 | 0.900 ± 0.000 | 0.500 ± 0.000 | – | 0.750 ± 0.000 |" in text
    assert "dfr: val WGA is measured on the validation data its head was refit on" in text
    # Equal cells: the best is not separated from the runner-up.
    assert text.count("**not separated (95 % intervals overlap)**") == 2


def _cells(wgas: dict[tuple[str, str], list[float]]) -> list:
    return [
        Result(0.99, mixture, method, seed, metrics={"test/worst_group_accuracy": wga})
        for (mixture, method), values in wgas.items()
        for seed, wga in enumerate(values)
    ]


def test_markdown_marks_whether_the_best_cell_is_separated_from_the_runner_up():
    apart = markdown(_cells({("none", "erm"): [0.10, 0.12, 0.11], ("ffr", "erm"): [0.90, 0.91, 0.92], ("usb", "erm"): [0.5, 0.52, 0.51]}), "t")
    assert "Best test WGA: ffr/erm 0.910; runner-up usb/erm 0.510: **separated (95 % intervals do not overlap)**." in apart
    # 0.000 vs 0.000 (as at r = 0.999 in the evidence) is no win.
    tied = markdown(_cells({("ffr", "erm"): [0.0, 0.0, 0.0], ("usb", "erm"): [0.0, 0.0, 0.0]}), "t")
    assert "**not separated (95 % intervals overlap)**" in tied
    wide = markdown(_cells({("ffr", "erm"): [0.9, 0.1, 0.8], ("usb", "erm"): [0.3, 0.4, 0.35]}), "t")
    assert "**not separated (95 % intervals overlap)**" in wide
    single = markdown(_cells({("ffr", "erm"): [0.9], ("usb", "erm"): [0.3]}), "t")
    assert "**not separated (one seed: no interval)**" in single


def test_chart_panels_for_several_ratios_and_bars_for_one(tmp_path):
    chart(_results(), tmp_path / "lines.png", "t")
    chart([r for r in _results() if r.bias_ratio == 0.95], tmp_path / "bars.png", "t")
    wide, bars = Image.open(tmp_path / "lines.png"), Image.open(tmp_path / "bars.png")
    # two mixtures → two panels side by side; one ratio → a bar chart of 3 cells
    assert wide.size[0] > wide.size[1] and bars.size[0] > 0


def _same_runs_twice():
    """The same runs as the sweep holds them (ExperimentResult) and as the report reads them
    back from MLflow (RunRecord, sorted as read_sweep sorts them)."""
    from fake2real.run.experiment import ExperimentResult
    from fake2real.report.runs import RunRecord
    from fake2real.train.stage_record import StageResult

    results, records = [], []
    for ratio in (0.99, None, 0.9):  # the sweep's own order; None: the data as distributed
        for mixture, method in (("ffr", "erm"), ("none", "groupdro")):
            for seed, wga in enumerate((0.2, 0.5, 0.6) if mixture == "ffr" else (0.3,)):
                metrics = {"test/worst_group_accuracy": wga, "test/balanced_accuracy": 0.8}
                probe = {"probe/g_leakage_auroc": 0.7 + 0.1 * seed} if mixture == "ffr" else {}
                run_id = f"{ratio}-{mixture}-{seed}"
                results.append(ExperimentResult(mixture, method, seed, run_id, ratio, [StageResult("k", "c", metrics)], probe))
                records.append(RunRecord(run_id, ratio, mixture, method, seed, {**metrics, **probe}))
    records.sort(key=lambda r: (-1 if r.bias_ratio is None else r.bias_ratio, r.mixture, r.method, r.seed))
    return results, records


def test_the_sweeps_chart_and_tables_show_what_the_report_shows(tmp_path, monkeypatch):
    import re

    from fake2real.report import figures
    from fake2real.report.html import results_table

    results, records = _same_runs_twice()
    drawn = []
    draw = figures.draw_wga_vs_bias_ratio
    monkeypatch.setattr(figures, "draw_wga_vs_bias_ratio", lambda wga, *a: drawn.append(wga) or draw(wga, *a))
    chart(results, tmp_path / "results.png", "t")  # the sweep's results.png
    figures.wga_vs_bias_ratio(records)  # the HTML report's Figure 3
    sweep_wga, report_wga = drawn
    assert sweep_wga == report_wga and len(sweep_wga) == 6
    ffr = sweep_wga[(0.9, "ffr", "erm")]  # mean 13/30, sample std 0.2082, t(0.975, 2) = 4.302653
    assert (ffr.mean, ffr.high - ffr.mean) == (pytest.approx(13 / 30), pytest.approx(4.302653 * 0.2081666 / 3 ** 0.5, rel=1e-6))
    assert sweep_wga[(None, "none", "groupdro")].n == 1
    # The markdown table and the HTML table: the same cells, seeds and texts (mean ± CI half-width).
    markdown_rows = re.findall(r"^\| (\w+) \| (\w+) \| (\d+) \| (.*) \|$", markdown(results, "t"), re.M)
    html_rows = re.findall(r"<tr><td>[^<]*</td><td>(\w+)</td><td>(\w+)</td><td>(\d+)</td>((?:<td>[^<]*</td>)*)</tr>", results_table(records))
    as_html = sorted((m, k, n, "".join(f"<td>{v}</td>" for v in values.split(" | "))) for m, k, n, values in markdown_rows)
    assert len(markdown_rows) == 6 and as_html == sorted(html_rows)
    assert f"0.433 ± {4.302653 * 0.2081666 / 3 ** 0.5:.3f}" in markdown(results, "t")


def test_each_mixture_is_judged_against_real_data_only_with_the_same_method():
    from fake2real.report.table import against_real_only
    from fake2real.stats import Interval

    wga = {
        (0.99, "none", "erm"): Interval(0.0, 0.0, 0.0, 3),
        (0.99, "none", "groupdro"): Interval(0.15, -0.46, 0.76, 3),
        (0.99, "ffr", "erm"): Interval(0.73, 0.22, 1.25, 3),  # overlaps none/groupdro, not none/erm
        (0.99, "ffr", "groupdro"): Interval(0.94, 0.85, 1.03, 3),
        (0.99, "usb", "groupdro"): Interval(0.10, 0.0, 0.2, 3),
        (0.99, "asb", "dfr"): Interval(0.5, 0.5, 0.5, 1),  # no none/dfr: left out
    }
    assert against_real_only(wga) == (
        "Against none (real data only), same method: ffr/erm separated above; ffr/groupdro separated above; usb/groupdro not separated."
    )
    one_seed = {(0.99, "none", "erm"): Interval(0.0, 0.0, 0.0, 1), (0.99, "ffr", "erm"): Interval(0.8, 0.8, 0.8, 1)}
    assert against_real_only(one_seed) == "Against none (real data only), same method: ffr/erm one seed, no interval."
    assert against_real_only({(0.99, "ffr", "erm"): Interval(0.8, 0.7, 0.9, 3)}) == ""
