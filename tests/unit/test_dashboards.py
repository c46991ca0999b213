"""The Grafana boards and the Prometheus config under dashboards/.

Every board parses and looks like a Grafana dashboard, and every metric name it queries is emitted
by someone: a custom metric declared in ``fake2real.track.ray_metrics`` (under the name Ray's
metrics agent exports it as, checked by running Ray's own agent-side recorder), or a metric the
installed Ray emits (collected from Ray's source: the node agent's gauges and the queries of Ray's
own Grafana boards), never a hand-written list. No Ray cluster is started.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest
import ray
import yaml

from fake2real.track import ray_metrics
from helpers import panels

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
BOARDS = sorted((DASHBOARDS / "grafana").glob("*.json"))
RAY = Path(ray.__file__).parent

# ---------------------------------------------------------------------------------------------
# Metric names in PromQL

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}
FUNCTIONS = AGGREGATIONS | {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar",
    "histogram_sum", "holt_winters", "double_exponential_smoothing", "hour", "idelta", "increase", "info",
    "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "rate",
    "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt",
    "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "mad_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh",
    "sin", "sinh", "tan", "tanh", "deg", "rad", "pi", "start", "end",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "atan2", "inf", "nan"}

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")  # Grafana's $window, ${datasource}, $__interval
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_WORDS = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def _words(expr: str) -> list[tuple[str, bool]]:
    """(identifier, is followed by '(') for each identifier left once strings, Grafana variables,
    label matchers, ranges and label lists (by/without/on/ignoring/group_*) are taken out."""
    s = _STRINGS.sub('""', expr)
    s = _VARIABLES.sub(" ", s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGES.sub(" ", s)
    s = _LABEL_LISTS.sub(" ", s)
    return [(m.group(1), m.group(2) is not None) for m in _WORDS.finditer(s)]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    return {word for word, call in _words(expr) if not call and word not in KEYWORDS and word.strip(":")}


def function_names(expr: str) -> set[str]:
    return {word for word, call in _words(expr) if call}


def variable_query_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query: label_values(metric, label),
    label_values(label), query_result(expr) or a plain expression."""
    query = query.strip()
    if match := re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]\w*\s*\)", query, re.S):
        return metric_names(match.group(1))
    if re.fullmatch(r"label_values\(\s*[A-Za-z_]\w*\s*\)", query):
        return set()
    if match := re.fullmatch(r"query_result\((.*)\)", query, re.S):
        return metric_names(match.group(1))
    return metric_names(query)


@pytest.mark.parametrize(
    "expr, names",
    [
        ('sum by (actor) (rate(ray_a_total{SessionName=~"$S", x="y{z}(w)"}[$window]))', {"ray_a_total"}),
        ("histogram_quantile(0.99, sum(rate(ray_h_bucket[5m])) by (le))", {"ray_h_bucket"}),
        ("100 * a / on(instance) group_left(GpuIndex) b offset 5m", {"a", "b"}),
        ("a / ignoring (x) group_left b", {"a", "b"}),
        ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
        ("max_over_time(ray_x[1h:5m]) > bool 3 and ray_y", {"ray_x", "ray_y"}),
        ("sum(ray_x) or vector(0)", {"ray_x"}),
        ('ray_node_gram_used{x="a"} * 1024 * 1e3 + 0.5', {"ray_node_gram_used"}),
        ("job:requests:rate5m", {"job:requests:rate5m"}),
        ("rate(ray_a_total[${__interval}])", {"ray_a_total"}),
        ('count_values("v", ray_x) without (instance)', {"ray_x"}),
        ("topk(5, sum without(a, b) (ray_x))", {"ray_x"}),
        ("max by(stage,rank)(last_over_time(ray_x{a=~'$b'}[$hold]))", {"ray_x"}),
    ],
)
def test_metric_names_of_an_expression(expr, names):
    assert metric_names(expr) == names


def test_function_names_of_an_expression():
    assert function_names("sum by (a) (rate(x[5m])) / on() group_left scalar(y)") == {"sum", "rate", "scalar"}
    assert function_names("rat(x[5m])") - FUNCTIONS == {"rat"}


def test_variable_query_metric_names():
    assert variable_query_metric_names("label_values(ray_node_cpu_count, SessionName)") == {"ray_node_cpu_count"}
    assert variable_query_metric_names('label_values(ray_x{a="b"}, instance)') == {"ray_x"}
    assert variable_query_metric_names("label_values(instance)") == set()
    assert variable_query_metric_names("query_result(topk(3, ray_y))") == {"ray_y"}


# ---------------------------------------------------------------------------------------------
# Who emits which name


def custom_metric_names() -> set[str]:
    return {metric.exported for metric in ray_metrics.ALL}


def _string_with_holes(node: ast.AST) -> str | None:
    """A str constant, or an f-string with each placeholder replaced by a number."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else " 0 " for v in node.values)
    return None


def _unformat(text: str) -> str:
    """Ray's board templates are str.format templates: {global_filters}, doubled braces."""
    return text.replace("{global_filters}", "").replace("{{", "{").replace("}}", "}")


@cache
def ray_metric_names() -> frozenset[str]:
    """Metric names the installed Ray emits, read from its source.

    - every Gauge of the node metrics agent (reporter_agent.py, METRICS_GAUGES), exported by the
      agent with the ``ray_`` prefix (ray_node_gpus_utilization, ray_node_gram_used, …);
    - every name queried by Ray's own Grafana boards (ray/dashboard/modules/metrics/dashboards/:
      the ``expr`` of each panel, the module-level query fragments, the variables of the base
      boards): what Ray documents as its metrics (ray_train_*, ray_data_*, ray_tasks, …).
    """
    names: set[str] = set()
    reporter = RAY / "dashboard" / "modules" / "reporter" / "reporter_agent.py"
    for node in ast.walk(ast.parse(reporter.read_text())):
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Gauge"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            names.add(ray_metrics.PREFIX + node.args[0].value)
    assert "ray_node_gpus_utilization" in names, "Ray's node agent no longer defines its GPU gauge here"

    boards = RAY / "dashboard" / "modules" / "metrics" / "dashboards"
    queries: list[str] = []
    for path in sorted(boards.glob("*_panels.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "expr":
                queries.append(_string_with_holes(node.value) or "")
        for node in tree.body:  # module-level fragments such as MAX_GPUS = 'sum(autoscaler_…{{…}})'
            text = _string_with_holes(node.value) if isinstance(node, ast.Assign) else None
            if text and "{{" in text and "(" in text:  # a query, not a legend like '{{a}}: {{b}}'
                queries.append(text)
    for path in sorted(boards.glob("*_base.json")):
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            query = variable.get("query")
            if variable.get("type") == "query" and isinstance(query, dict):
                names |= variable_query_metric_names(_unformat(query.get("query", "")))
    assert len(queries) > 100, f"found only {len(queries)} queries in Ray's boards under {boards}"
    for query in queries:
        names |= metric_names(_unformat(query))
    return frozenset(names)


def unknown_metric_names(expr: str) -> set[str]:
    """Names an expression queries that neither this project nor Ray emits."""
    return metric_names(expr) - custom_metric_names() - ray_metric_names()


def test_ray_metric_names_come_from_ray():
    names = ray_metric_names()
    for expected in ("ray_node_gpus_utilization", "ray_node_gram_used", "ray_node_cpu_utilization",
                     "ray_train_controller_state", "ray_tasks"):
        assert expected in names
    # Only metric-like names: nothing from prose, labels or functions leaks in.
    assert not names & (FUNCTIONS | KEYWORDS | {"instance", "SessionName", "GpuIndex", "le"})
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) for name in names), sorted(names)


def test_a_made_up_metric_is_refused():
    assert unknown_metric_names("sum by (actor) (rate(ray_fake2real_made_up_total[5m]))") == {"ray_fake2real_made_up_total"}
    assert unknown_metric_names("ray_node_gpus_utilisation") == {"ray_node_gpus_utilisation"}
    # Emitted under a different name than the one given to ray.util.metrics: no prefix, no _total.
    assert unknown_metric_names("fake2real_generated_images") == {"fake2real_generated_images"}
    assert unknown_metric_names("ray_fake2real_generated_images") == {"ray_fake2real_generated_images"}
    assert unknown_metric_names("rate(ray_fake2real_generated_images_total[5m]) / ray_node_gpus_utilization") == set()


# ---------------------------------------------------------------------------------------------
# The boards


def _exprs(board: dict) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]


def test_there_is_a_board():
    assert BOARDS, "no Grafana board under dashboards/grafana/"


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.name)
def test_board_is_a_grafana_dashboard(path):
    board = json.loads(path.read_text())
    assert isinstance(board.get("title"), str) and board["title"]
    assert isinstance(board.get("uid"), str) and board["uid"]
    assert isinstance(board.get("schemaVersion"), int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    shown = panels(board)
    assert shown
    ids = [p["id"] for p in shown]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in shown:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert isinstance(target["expr"], str) and target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], panel["title"]


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.name)
def test_board_queries_only_emitted_metrics(path):
    board = json.loads(path.read_text())
    queried: set[str] = set()
    for expr in _exprs(board):
        assert "__name__" not in expr, f"name matchers are not checked: {expr}"
        assert function_names(expr) <= FUNCTIONS, f"unknown PromQL function in {expr}"
        assert metric_names(expr), f"no metric in {expr}"
        assert unknown_metric_names(expr) == set(), f"nobody emits these: {expr}"
        queried |= metric_names(expr)
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            names = variable_query_metric_names(variable["query"]["query"])
            assert names - custom_metric_names() - ray_metric_names() == set(), variable["name"]
    # The board covers what the issue asks for.
    assert {m.exported for m in ray_metrics.ALL} <= queried
    assert {"ray_node_gpus_utilization", "ray_node_gram_used"} <= queried


# ---------------------------------------------------------------------------------------------
# The custom metrics


def test_custom_metrics_are_well_formed():
    names = [m.name for m in ray_metrics.ALL]
    assert len(names) == len(set(names))
    for metric in ray_metrics.ALL:
        assert re.fullmatch(r"fake2real_[a-z0-9_]+", metric.name), metric.name
        assert metric.kind in ("counter", "gauge")
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", key) for key in metric.tag_keys), metric.tag_keys
    declared = {v for v in vars(ray_metrics).values() if isinstance(v, ray_metrics.RayMetric)}
    assert declared == set(ray_metrics.ALL), "every metric defined in ray_metrics belongs in ALL"
    for metric in ray_metrics.ALL:
        assert metric.exported in (ray_metrics.__doc__ or ""), f"{metric.exported} missing from the module docstring"
        assert metric.exported in (DASHBOARDS / "README.md").read_text(), f"{metric.exported} missing from dashboards/README.md"


def test_exported_names_are_the_ones_rays_agent_exports():
    """Feed each custom metric through Ray's own agent-side recorder (the one each node's metrics
    agent serves to Prometheus) and read back the Prometheus names, in a fresh interpreter (the
    recorder installs process-wide OpenTelemetry state). No Ray cluster is started."""
    from ray._private.telemetry.open_telemetry_metric_recorder import NAMESPACE

    assert ray_metrics.PREFIX == NAMESPACE + "_"
    script = textwrap.dedent(
        """
        import json, sys
        from prometheus_client import REGISTRY, generate_latest
        from ray._private.telemetry.open_telemetry_metric_recorder import OpenTelemetryMetricRecorder
        recorder = OpenTelemetryMetricRecorder()
        for name, kind, tag_keys in json.loads(sys.argv[1]):
            getattr(recorder, f"register_{kind}_metric")(name, "")
            recorder.set_metric_value(name, {key: "x" for key in tag_keys}, 1.0)
        print(generate_latest(REGISTRY).decode())
        """
    )
    metrics = [[m.name, m.kind, list(m.tag_keys)] for m in ray_metrics.ALL]
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(metrics)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    from prometheus_client.parser import text_string_to_metric_families

    samples = {s.name: s.labels for family in text_string_to_metric_families(out) for s in family.samples}
    for metric in ray_metrics.ALL:
        assert metric.exported in samples, f"{metric.exported} not in {sorted(n for n in samples if 'fake2real' in n)}"
        assert set(metric.tag_keys) <= set(samples[metric.exported])


def test_create_records_nothing_outside_ray():
    # A fresh interpreter: in this one, integration tests may have started Ray already.
    script = (
        "import ray\n"
        "from fake2real.track import ray_metrics\n"
        "for metric in ray_metrics.ALL:\n"
        "    record = getattr(metric.create(), 'set' if metric.kind == 'gauge' else 'inc')\n"
        "    record(1.0, tags={key: 'x' for key in metric.tag_keys})\n"
        "assert ray_metrics.actor_tag() == 'local'\n"
        "assert not ray.is_initialized()\n"
        "print('no-op')\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert completed.returncode == 0 and completed.stdout.strip() == "no-op", completed.stderr[-2000:]


def _sources() -> list[Path]:
    return [
        p for folder in ("platform", "jobs") for p in sorted((REPO / folder).rglob("*.py"))
        if p.name != "ray_metrics.py"
    ]


def _creates_ray_metrics(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "ray.util.metrics" or (
            node.module == "ray.util" and any(alias.name == "metrics" for alias in node.names)
        )
    if isinstance(node, ast.Import):
        return any(alias.name == "ray.util.metrics" for alias in node.names)
    return isinstance(node, ast.Attribute) and ast.unparse(node) == "ray.util.metrics"


def test_emitters_use_the_declared_metrics():
    """Metric names live in ray_metrics alone: no other module creates Ray metrics or spells a
    declared metric's name, and every declared metric is imported by some emitter."""
    spelled = {m.name for m in ray_metrics.ALL} | {m.exported for m in ray_metrics.ALL}
    spelled |= {ray_metrics.PREFIX + m.name for m in ray_metrics.ALL}
    imported: set[str] = set()
    for path in _sources():
        where = path.relative_to(REPO)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            assert not _creates_ray_metrics(node), f"{where} creates Ray metrics itself; declare them in ray_metrics"
            if isinstance(node, ast.ImportFrom) and node.module == "fake2real.track.ray_metrics":
                imported |= {alias.name for alias in node.names}
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in spelled, f"{where} spells a metric name: {node.value!r}"
    declared = {name for name, v in vars(ray_metrics).items() if isinstance(v, ray_metrics.RayMetric)}
    assert declared <= imported, f"declared but never emitted: {sorted(declared - imported)}"


def test_the_emitter_check_sees_a_metric_made_elsewhere():
    for source in ("from ray.util.metrics import Gauge", "import ray.util.metrics", "from ray.util import metrics",
                   "ray.util.metrics.Gauge('x')"):
        assert any(_creates_ray_metrics(node) for node in ast.walk(ast.parse(source))), source


# ---------------------------------------------------------------------------------------------
# Prometheus


def test_prometheus_config_reads_rays_service_discovery_file():
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    config = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"]
    files = [
        f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]
    ]
    assert files, "no file_sd_configs"
    assert any(Path(f).name == PROMETHEUS_SERVICE_DISCOVERY_FILE for f in files), files
    assert "/tmp/ray/" + PROMETHEUS_SERVICE_DISCOVERY_FILE in files  # Ray's default temp dir
