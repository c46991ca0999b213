"""The sweep's results table and chart: per bias ratio, mean ± 95 % interval over seeds, missing values shown, and whether the best cell is separated from the runner-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from fake2real.report.table import chart, markdown, rows


@dataclass
class Result:
    bias_ratio: float
    mixture: str
    method: str
    seed: int
    run_id: str = "r"
    metrics: dict = field(default_factory=dict)


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


def test_rows_group_by_ratio_mixture_method():
    table = rows(_results())
    assert len(table) == 6
    assert table[0]["test/worst_group_accuracy"] == [0.2, 0.4] and table[0]["seeds"] == 2


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
