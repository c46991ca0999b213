"""The static HTML report of a sweep, built from MLflow alone (``jobs/report.py``).

One self-contained file (figures embedded as PNG data URIs), so it can be mailed or attached to
the sweep's MLflow run: the results table with 95 % confidence intervals, WGA against bias
ratio (the paper's Figure 3), per-group accuracy heatmaps, synthetic images per group, the
G-leakage chart and Grad-CAM maps (the paper's Figure 5).
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fake2real.data.images import decode_rgb
from fake2real.data.table import group_name, read_info, read_table
from fake2real.report import figures, regime
from fake2real.report.cells import by_point, interval_text, intervals, ratio_order, seed_counts
from fake2real.config import point_label
from fake2real.report.table import COLUMNS as TABLE_COLUMNS, HEADERS, cell_bars
from fake2real.report.runs import RunRecord, SweepRuns, read_sweep
from fake2real.errors import TrackingError, redact
from fake2real.track.mlflow_runs import fail_fast

COLUMNS = tuple(zip(TABLE_COLUMNS, HEADERS))  # metric, heading: the same as results.md


@dataclass
class Figure:
    id: str
    title: str
    png: bytes
    caption: str
    # Shown above the results table: a figure a person reads before the rows (a sweep with axes
    # has a row per point, mixture and method, so its map would sit below dozens of them).
    first: bool = False


def group_labels(table: str) -> dict[str, str]:
    info = read_info(table)
    return {group_name(y, b): f"{c} · {bias}" for y, c in enumerate(info.class_names) for b, bias in enumerate(info.bias_names)}


def synthetic_grid(table: str, per_group: int = 6) -> bytes:
    """The first ``per_group`` training images (by id) of every group of a synthetic table."""
    rows = read_table(table, split="train", columns=["id", "image", "y", "b"]).sort_by("id")
    images: dict[str, list[np.ndarray]] = {}
    for y, b, data in zip(rows.column("y").to_pylist(), rows.column("b").to_pylist(), rows.column("image").to_pylist()):
        group = images.setdefault(group_name(y, b), [])
        if len(group) < per_group:
            group.append(decode_rgb(data).permute(1, 2, 0).numpy())
    return figures.image_grid(dict(sorted(images.items())), f"synthetic training images: {Path(table).name}", group_labels(table))


def results_table(records: list[RunRecord]) -> str:
    """The same cells, intervals and text as the sweep's results.md (``report/cells.py``); a
    column for the point when the sweep has axes."""
    groups = by_point(records)
    with_points = any(groups)
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = []
    for point, runs in groups.items():
        seeds = seed_counts(runs)
        by_column = {metric: intervals(runs, metric) for metric, _ in COLUMNS}
        where = f"<td>{html.escape(point_label(dict(point)))}</td>" if with_points else ""
        for cell, count in seeds.items():
            ratio, mixture, method = cell
            values = "".join(f"<td>{interval_text(by_column[metric].get(cell))}</td>" for metric, _ in COLUMNS)
            body.append(f"<tr>{where}<td>{ratio}</td><td>{html.escape(mixture)}</td><td>{html.escape(method)}</td><td>{count}</td>{values}</tr>")
    point_head = "<th>point</th>" if with_points else ""
    return (
        f'<table id="results-table"><thead><tr>{point_head}<th>r</th><th>mixture</th><th>method</th><th>seeds</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def build_figures(records: list[RunRecord], saliency: bool = True) -> list[Figure]:
    if any(r.point for r in records):
        return _regime_figures(records)
    labels = group_labels(records[0].real_table) if records[0].real_table else None
    built = [
        Figure("wga-vs-bias-ratio", "Worst-group accuracy against bias ratio", figures.wga_vs_bias_ratio(records),
               "Test WGA of the model selected by validation WGA; a panel per mixture, a line per method; bars: 95 % CI over seeds."),
        Figure("group-accuracy", "Accuracy of every group", figures.group_heatmaps(records, labels),
               "Mean test accuracy per (class · bias) group over seeds. The rare groups of the training set are where bias shows."),
    ]
    if any(figures.LEAKAGE in r.metrics for r in records):
        built.append(Figure("g-leakage", "G-leakage: does the model encode real vs synthetic?", figures.g_leakage(records),
                            "AUROC of a linear probe on frozen penultimate features predicting real vs synthetic on a "
                            "balanced held-out set; 0.5 = no trace of the generator. Bars: 95 % CI over seeds."))
    highest = max((r.bias_ratio for r in records), key=ratio_order)
    tables = list(dict.fromkeys(r.synthetic_table for r in records if r.synthetic_table and r.bias_ratio == highest))
    for index, table in enumerate(tables[:3]):
        users = sorted({f"{r.mixture}" for r in records if r.synthetic_table == table})
        built.append(Figure(f"synthetic-images-{index}", f"Synthetic images per group ({', '.join(users)})", synthetic_grid(table),
                            f"Training images of {html.escape(table)}, first six per group by id."))
    if saliency:
        from fake2real.report.saliency import saliency_figure  # torch: only for this figure

        found = saliency_figure(records)
        if found is not None:
            png, runs = found
            built.append(Figure("saliency", "Where the models look (Grad-CAM)", png,
                                f"Grad-CAM of the true class on real test images, two per group, for {len(runs)} runs at r = {runs[0].bias_ratio} "
                                "(lowest seed; post-hoc methods left out: their refit head is not a checkpoint)."))
    return built


def _regime_figures(records: list[RunRecord]) -> list[Figure]:
    """A sweep with axes: its regime map and every point's cells (figures over ratios would pool the points' runs)."""
    built = [Figure("cells-per-point", "Test WGA of every cell, per point", figures.to_png(cell_bars(records, "")),
                    "At every point of the sweep's axes, each cell's mean test WGA and balanced accuracy over seeds (bars: 95 % CI; "
                    "dots: the seeds).")]
    fig = regime.draw(records)
    if fig is None:
        return built
    return [Figure("regime-map", "Regime map: where FFR wins", figures.to_png(fig),
                   f"Difference of mean test WGA over seeds at every point of the sweep's axes; bold with {regime.MARK}: the two "
                   "mixtures' 95 % intervals do not overlap; otherwise not separated. The results table below lists every cell.", first=True),
            *built]


def _sections(built: list[Figure]) -> str:
    return "".join(
        f'<section><h2>{html.escape(f.title)}</h2><figure id="{f.id}"><img class="figure" alt="{html.escape(f.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(f.png).decode()}"><figcaption>{f.caption}</figcaption></figure></section>'
        for f in built
    )


def render(sweep: SweepRuns, built: list[Figure], tracking_uri: str) -> str:
    leading, sections = _sections([f for f in built if f.first]), _sections([f for f in built if not f.first])
    ratios = sorted({r.bias_ratio for r in sweep.records}, key=ratio_order)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fake2real report: {html.escape(sweep.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }} th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:nth-child(2), td:nth-child(3) {{ text-align: left; }}
img.figure {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.85rem; }} code {{ background: #f3f3f3; }}
</style></head>
<body>
<h1>{html.escape(sweep.name)}</h1>
<p id="provenance">MLflow run <code>{sweep.run_id}</code> ({html.escape(sweep.status)}) at <code>{html.escape(redact(tracking_uri))}</code>;
{len(sweep.records)} experiment runs; bias ratios {", ".join(map(str, ratios))}; built {time.strftime("%Y-%m-%d %H:%M:%S")}.</p>
{leading}
<section><h2>Results</h2>
<p>Mean ± half-width of the 95 % confidence interval over seeds (Student t); one seed: its value. The model of each
run is the one selected by validation WGA only.</p>
{results_table(sweep.records)}</section>
{sections}
<script>
// For headless checks and for people: how many figures actually decoded.
window.addEventListener("load", () => {{
  const images = [...document.querySelectorAll("img.figure")];
  document.body.dataset.figuresDecoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
}});
</script>
</body></html>
"""


def build_report(tracking_uri: str, experiment: str, output: Path | None = None, sweep_run_id: str | None = None, saliency: bool = True) -> Path:
    """Writes the report (default ``outputs/reports/<sweep>-<run id>.html``), attaches it to the
    sweep's MLflow run and returns its path."""
    from mlflow.tracking import MlflowClient

    try:
        with fail_fast():
            client = MlflowClient(tracking_uri=tracking_uri)
            sweep = read_sweep(client, experiment, sweep_run_id)
    except TrackingError:
        raise
    except Exception as exc:  # MLflow raises many types; all mean "cannot read this store"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(redact(f"report: cannot read MLflow at {tracking_uri}: {first[:300]}")) from None
    print(f"[report] sweep {sweep.name} ({sweep.run_id}): {len(sweep.records)} experiment runs", flush=True)
    built = build_figures(sweep.records, saliency)
    output = output or Path("outputs") / "reports" / f"{sweep.name}-{sweep.run_id[:8]}.html"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(sweep, built, tracking_uri))
    client.log_artifact(sweep.run_id, str(output))  # beside results.md/png in the MLflow UI
    return output
