"""The sweep's results table and chart: per bias ratio, mean ± std over seeds, missing values shown."""

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


def test_markdown_sections_per_ratio_with_mean_std_and_missing():
    text = markdown(_results(), "t")
    assert "### bias ratio 0.95" in text and "### bias ratio 0.99" in text
    # mean 0.3, sample std 0.141; 'none' runs have no probe value: shown as a dash
    assert "| none | erm | 2 | 0.300 ± 0.141 | 0.900 ± 0.000 | 0.500 ± 0.000 | – | – |" in text
    assert "| ffr | dfr | 2 | 0.300 ± 0.141 | 0.900 ± 0.000 | 0.500 ± 0.000 | – | 0.750 ± 0.000 |" in text


def test_chart_panels_for_several_ratios_and_bars_for_one(tmp_path):
    chart(_results(), tmp_path / "lines.png", "t")
    chart([r for r in _results() if r.bias_ratio == 0.95], tmp_path / "bars.png", "t")
    wide, bars = Image.open(tmp_path / "lines.png"), Image.open(tmp_path / "bars.png")
    # two mixtures → two panels side by side; one ratio → a bar chart of 3 cells
    assert wide.size[0] > wide.size[1] and bars.size[0] > 0
