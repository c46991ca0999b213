"""Prometheus for the integration tests, and the Grafana board's queries as Grafana sends them.

The server is Debian's ``prometheus`` (2.42; part of the README's test command), a subprocess on
127.0.0.1 with a TSDB of its own, stopped by handle. Its config is the shipped
``dashboards/prometheus.yml``, changed only as ``dashboards/README.md`` says for a Ray started with
``--temp-dir=DIR`` (``/tmp/ray/`` becomes ``DIR/``) and with shorter intervals than the shipped
10 s (scraping, and re-reading Ray's discovery file).

Grafana replaces its template variables (``$SessionName``, ``$window``, ``${datasource}``, …)
before a query reaches Prometheus: ``board_targets`` does the same from the board's own variable
definitions, so the expressions evaluated are the ones a Grafana would send.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from helpers import panels

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
SHIPPED_CONFIG = DASHBOARDS / "prometheus.yml"
RAY_DEFAULT_TEMP_DIR = "/tmp/ray/"


def binary() -> str | None:
    return shutil.which("prometheus")


def config_for(ray_temp_dir: Path, scrape_interval: str) -> dict:
    """The shipped config for a Ray head started with ``--temp-dir=ray_temp_dir``, scraping and
    re-reading Ray's discovery file every ``scrape_interval``."""
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    moved = 0
    for job in config["scrape_configs"]:
        for discovery in job.get("file_sd_configs", []):
            files = [f"{ray_temp_dir}/{f.removeprefix(RAY_DEFAULT_TEMP_DIR)}" if f.startswith(RAY_DEFAULT_TEMP_DIR) else f for f in discovery["files"]]
            moved += files != discovery["files"]
            discovery.update(files=files, refresh_interval=scrape_interval)
    assert moved, f"{SHIPPED_CONFIG} reads no file under {RAY_DEFAULT_TEMP_DIR}"
    config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval, scrape_timeout=scrape_interval)
    return config


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    """Prometheus' HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/)."""

    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url = url
        self.process = process
        self.log = log

    def api(self, path: str, **params) -> dict | list:
        """The ``data`` of a GET on ``/api/v1/<path>``; PrometheusError with Prometheus' own error
        (a query that does not parse is a 400 ``bad_data``)."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                body = json.load(error)
            except ValueError:
                raise PrometheusError(f"{path} {params}: HTTP {error.code}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')} ({path} {params})")
        return body["data"]

    def query(self, expr: str, at: float) -> dict:
        return self.api("query", query=expr, time=f"{at:.3f}")

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict:
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")

    def targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start(port: int, ray_temp_dir: Path, scrape_interval: str) -> tuple[subprocess.Popen, Path, Prometheus]:
    prometheus = binary()
    if prometheus is None:
        raise RuntimeError("prometheus is not installed: apt-get install prometheus (the README's test command does)")
    tmp = Path(tempfile.mkdtemp(prefix="f2r-prometheus-", dir="/tmp"))
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(config_for(ray_temp_dir, scrape_interval), sort_keys=False))
    log = tmp / "prometheus.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                prometheus, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={tmp / 'data'}",
            ],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    return process, log, Prometheus(url, process, log)


# ---------------------------------------------------------------------------------------------
# The board's queries, as Grafana sends them


def regex_escape(value: str) -> str:
    """A value of a multi-value or "All" variable as Grafana's Prometheus data source writes it into
    a query (interpolateQueryExpr → prometheusSpecialRegexEscape): regex characters escaped inside
    the PromQL string, so with two backslashes."""
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value.replace("\\", "\\\\\\\\"))


_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)(?::[\w]+)?\]\]|\$(\w+)")


@dataclass(frozen=True)
class Target:
    panel: str
    ref_id: str
    expr: str  # as written on the board
    query: str  # as sent to Prometheus


def variable_values(board: dict, chosen: dict[str, str] | None = None, builtins: dict[str, str] | None = None) -> dict[str, str]:
    """Each template variable's value as Grafana substitutes it: what ``chosen`` picks (a query
    variable's single value, regex-escaped as Grafana does), else the board's current selection
    ("All" is the variable's allValue), plus Grafana's built-ins."""
    values = dict(builtins or {})
    chosen = chosen or {}
    for variable in board["templating"]["list"]:
        name = variable["name"]
        if variable["type"] == "datasource":
            continue
        if name in chosen:
            values[name] = regex_escape(chosen[name]) if variable.get("multi") or variable.get("includeAll") else chosen[name]
            continue
        current = variable.get("current", {}).get("value")
        if current in ("$__all", ["$__all"]):
            if not variable.get("allValue"):
                raise ValueError(f"variable {name}: 'All' without an allValue is the list of its values; choose one")
            values[name] = variable["allValue"]
        elif isinstance(current, str) and current:
            values[name] = current
        else:
            raise ValueError(f"variable {name} has no current value: {current!r}")
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def board_targets(board: dict, values: dict[str, str]) -> list[Target]:
    return [
        Target(panel["title"], target["refId"], target["expr"], substitute(target["expr"], values))
        for panel in panels(board) if panel.get("type") != "row"
        for target in panel.get("targets", [])
    ]


def wait_until(check, timeout: float, what, poll: float = 1.0):
    """``check()`` until it returns something truthy (returned), else AssertionError with ``what()``."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(poll)
    assert result, f"{what()}: not after {timeout:g} s"
    return result
