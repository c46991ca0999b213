"""A smoke sweep looked at the two ways a user would: ``jobs/report.py``'s HTML report on its MLflow
store, opened in headless Chromium, and the Grafana board on a Prometheus that scraped the Ray head
while the sweep ran.

Chromium is Debian's (`apt-get install chromium`, part of the README's test command): the page
is loaded, a screenshot taken, and the DOM read back after the figures' images decoded.

Prometheus is Debian's too (`apt-get install prometheus`, 2.42, part of the README's test command),
run with the shipped ``dashboards/prometheus.yml`` (tests/integration/prometheus.py): every query of
``dashboards/grafana/fake2real.json`` is sent as Grafana would send it, with its variables
substituted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from mlflow.tracking import MlflowClient

import prometheus
from fake2real.config import build_config
from fake2real.data.table import read_info
from fake2real.presets import preset
from fake2real.run.sweep import SweepResult, run_sweep
from fake2real.train.local import LATEST_FILE
from helpers import free_port, run_job, stop_group, wait_http

FIGURES = ("wga-vs-bias-ratio", "group-accuracy", "g-leakage", "synthetic-images-0", "saliency")
BOARD = prometheus.DASHBOARDS / "grafana" / "fake2real.json"
# Faster than the shipped 10 s: Ray's agent keeps a gauge ~20 s after its last report (counters
# for good), so every value set is scraped several times.
SCRAPE_INTERVAL_S = 5


def chromium(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install chromium (the README's test command does)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def prometheus_server(ray_head):
    """Prometheus scraping the shared Ray head, once it found the head's metrics agent in the
    discovery file Ray writes in its temp dir."""
    if prometheus.binary() is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus (the README's test command does)")
    process, log, server = prometheus.start(free_port(), ray_head.tmp, f"{SCRAPE_INTERVAL_S}s")
    try:
        wait_http(f"{server.url}/-/ready", 60, process, log)
        # The agent's address in the file is the node's IP (not necessarily --node-ip-address).
        agent = f":{ray_head.metrics_port}"
        prometheus.wait_until(
            lambda: [t for t in server.targets() if t["labels"].get("instance", "").endswith(agent)],
            60, lambda: f"Prometheus finding Ray's metrics agent *{agent} in the discovery file (targets: {server.targets()}; log: {server.log_tail()})",
        )
        yield server
    finally:
        stop_group(process, grace=10)


@dataclass
class SmokeSweep:
    result: SweepResult
    tracking: str
    output_dir: Path
    backend: str  # generation.backend
    started: float  # Unix time
    ended: float
    generated_before: dict[str, float]  # images generated per backend, as scraped before the sweep


GENERATED = "sum by (backend) (ray_fake2real_generated_images_total)"


def _settled(server, query: str, label: str, quiet_s: float = 20.0, timeout_s: float = 90.0) -> dict[str, float]:
    """A query's value per ``label`` once it stopped changing for ``quiet_s`` (Ray's agent exports
    every 10 s, Prometheus scrapes every few): what the session's earlier tests left on the shared
    head, so the sweep's own growth can be told from it."""
    def now() -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in server.query(query, time.time())["result"]}

    prometheus.wait_until(lambda: server.query("up", time.time())["result"], 60, lambda: "Prometheus scraping nothing")
    value, since, deadline = now(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"{query} kept changing for {timeout_s} s: {value}"
        time.sleep(SCRAPE_INTERVAL_S)
        if (latest := now()) != value:
            value, since = latest, time.monotonic()
    return value


@pytest.fixture(scope="module")
def smoke_sweep(ray_connected, prometheus_server, tmp_path_factory):
    """One smoke sweep (2 cells, each a 2-trial search then a seed), run in this process as a Ray
    driver while Prometheus scrapes."""
    tmp = tmp_path_factory.mktemp("smoke-sweep")
    tracking = f"sqlite:///{tmp / 'mlflow.db'}"
    config = build_config(
        overrides={
            "output_dir": str(tmp / "out"),
            "tracking": {"uri": tracking, "experiment": "report"},
            "generation": {"test_images_per_group": 10},
            "train": {"num_workers": 1},
        },
        base=preset("smoke"),
    )
    before = _settled(prometheus_server, GENERATED, "backend")
    started = time.time()
    result = run_sweep(config)
    return SmokeSweep(result, tracking, tmp / "out", config.generation.backend, started, time.time(), before)


def test_report_from_a_smoke_sweep(smoke_sweep, tmp_path):
    sweep, tracking = smoke_sweep.result, smoke_sweep.tracking
    page = tmp_path / "report.html"
    completed = run_job("report.py", "--tracking-uri", tracking, "--experiment", "report", "--output", str(page), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"report: {page}" in completed.stdout
    assert "report.html" in {a.path for a in MlflowClient(tracking_uri=tracking).list_artifacts(sweep.run_id)}

    shot = tmp_path / "report.png"
    taken = chromium("--window-size=1280,3000", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), taken.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 3000)
        assert len(image.convert("L").resize((64, 150)).getcolors(256) or ()) > 20  # not a blank page

    dom = chromium("--dump-dom", page.as_uri()).stdout
    for figure in FIGURES:
        assert f'<figure id="{figure}">' in dom, figure
    decoded = re.search(r'data-figures-decoded="(\d+)"', dom)
    assert decoded and int(decoded.group(1)) == dom.count('class="figure"') == len(FIGURES)
    # The table has one row per cell, read from MLflow: both methods of the smoke sweep.
    assert "<td>ffr</td><td>erm</td><td>1</td>" in dom and "<td>ffr</td><td>groupdro</td><td>1</td>" in dom
    assert sweep.run_id in dom


def test_report_of_an_unknown_experiment_is_one_line(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    missing = run_job("report.py", "--tracking-uri", tracking, "--experiment", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: no MLflow store at ")
    assert not (tmp_path / "mlflow.db").exists()  # a mistyped path does not become an empty store
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking).create_experiment("other")
    completed = run_job("report.py", "--tracking-uri", tracking, "--experiment", "nope", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: report: no MLflow experiment 'nope' at {tracking}"
    assert not (tmp_path / "outputs").exists()


def _label_values(server: prometheus.Prometheus, query: str, start: float, end: float) -> list[str]:
    """A Grafana query variable ``label_values(metric, label)``, as Grafana's Prometheus data source
    asks for it (``/api/v1/label/<label>/values`` with ``match[]``)."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\s*\)", query.strip())
    assert match, f"not a label_values(metric, label) query: {query}"
    metric, label = match.groups()
    return server.api(f"label/{label}/values", **{"match[]": metric, "start": f"{start:.3f}", "end": f"{end:.3f}"})


def _ours(expr: str) -> bool:
    """A query of the project's own metrics (fake2real.track.ray_metrics)."""
    return "ray_fake2real_" in expr


def _last(series: list[dict], label: str) -> dict[str, float]:
    """label value → the series' last value in a range query's result."""
    return {s["metric"].get(label, ""): float(s["values"][-1][1]) for s in series}


def test_grafana_board_on_prometheus(smoke_sweep, prometheus_server, ray_head):
    """Every query of the board parses in Prometheus. Every query of the project's own metrics
    returns the sweep that just ran, through the query a panel sends (each target is a ``range``
    query over the board's time range), with the "Ray session" picked as All and as this head's
    session; its labels are the names dashboards/README.md gives."""
    server, board = prometheus_server, json.loads(BOARD.read_text())
    step = SCRAPE_INTERVAL_S
    start = smoke_sweep.started - 60
    sweep = smoke_sweep.result.directory.name  # the results folder, as the `sweep` label
    cells = len({(r.bias_ratio, r.mixture, r.method) for r in smoke_sweep.result.results})

    # The "Ray session" picker's query: one session scraped, this head's.
    (picker,) = [v for v in board["templating"]["list"] if v["type"] == "query"]
    sessions = _label_values(server, picker["query"]["query"], start, time.time())
    assert len(sessions) == 1, sessions
    builtins = {"__interval": f"{step}s", "__rate_interval": f"{4 * step}s"}
    choices = {
        "All": prometheus.variable_values(board, {}, builtins),
        sessions[0]: prometheus.variable_values(board, {picker["name"]: sessions[0]}, builtins),
    }
    targets = {choice: prometheus.board_targets(board, values) for choice, values in choices.items()}
    assert len(targets["All"]) == 16 and sum(_ours(t.expr) for t in targets["All"]) == 8

    # Parsing: an instant query of each; a query that does not parse is refused whatever the data.
    for target in (t for ts in targets.values() for t in ts):
        try:
            server.query(target.query, time.time())
        except prometheus.PrometheusError as error:
            pytest.fail(f"{target.panel} {target.ref_id}: {target.query}\n{error}")

    # Data: Ray's agent gets a process's values once per report interval (10 s), so the sweep's
    # last values arrive up to ~10 s after it ended: ask again until they are all there.
    results: dict[tuple[str, str, str], list[dict]] = {}

    def missing() -> list[str]:
        end = time.time()
        for choice, ts in targets.items():
            for t in ts:
                results[choice, t.panel, t.ref_id] = server.query_range(t.query, start, end, step)["result"]
        problems = [
            f"{choice}: {t.panel} {t.ref_id} has no series: {t.query}"
            for choice, ts in targets.items() for t in ts if _ours(t.expr) and not results[choice, t.panel, t.ref_id]
        ]
        for choice in choices:
            progress = {
                "finished": _last(results[choice, "Sweep cells finished / total", "A"], "sweep"),
                "total": _last(results[choice, "Sweep cells finished / total", "B"], "sweep"),
                "percent": _last(results[choice, "Sweep progress", "A"], "sweep"),
            }
            if progress != {"finished": {sweep: cells}, "total": {sweep: cells}, "percent": {sweep: 100.0}}:
                problems.append(f"{choice}: sweep progress at the end is {progress}, not {cells}/{cells} cells of {sweep}")
        return problems

    deadline = time.monotonic() + 60
    while (problems := missing()) and time.monotonic() < deadline:
        time.sleep(step)
    with_data = sorted({f"{panel} {ref}" for (choice, panel, ref), result in results.items() if result and choice == "All"})
    print(f"{len(with_data)} of {len(targets['All'])} board targets with data:", *with_data, sep="\n  ")
    assert not problems, "\n".join(problems) + f"\ntargets: {server.targets()}"

    # Labels: a training worker's `stage` is its stage's run name; a generator's `actor` its actor id.
    # Values: over the sweep the counter grew by the images of the synthetic pools it generated,
    # for its backend and no other.
    all_ = {key[1:]: result for key, result in results.items() if key[0] == "All"}
    pools = sorted((smoke_sweep.output_dir / "data").glob("pool-*"))
    before = smoke_sweep.generated_before
    grown = {backend: n - before.get(backend, 0.0) for backend, n in _last(all_["Images generated", "A"], "backend").items()}
    grown = {backend: n for backend, n in grown.items() if n}
    assert grown == {smoke_sweep.backend: sum(read_info(p).num_rows for p in pools)}, (grown, smoke_sweep.generated_before, pools)
    # The sweep's stages are single-worker ones (train/local.py): no Ray Train run, their label the
    # run folder each stage wrote its checkpoints in (a trial ASHA stopped has no result in it).
    stages = set(_last(all_["Training images/s per worker", "A"], "stage"))
    runs = {marker.parent.name for marker in (smoke_sweep.output_dir / "runs").glob(f"*/{LATEST_FILE}")}
    assert stages and stages <= runs, (stages, runs)
    actors = set(_last(all_["Generation images/s per actor", "A"], "actor"))
    assert actors and all(re.fullmatch(r"[0-9a-f]{32}", actor) for actor in actors), actors
