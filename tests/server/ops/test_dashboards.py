"""Every metric a Grafana dashboard panel or a Prometheus alert queries is exported by a running SUP, and the
dashboard JSON is what contrib/grafana/build_dashboards.py generates."""

from __future__ import annotations

import importlib.util
import json
import os
import re

import requests
import yaml

from tests.server.admin.helpers import admin_token, create_room, send, user

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROMQL_WORDS = {
    "sum", "by", "rate", "irate", "increase", "histogram_quantile", "topk", "max", "min", "avg", "count", "without",
    "max_over_time", "min_over_time", "avg_over_time", "le", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "offset", "bool", "abs", "clamp_min", "clamp_max", "label_replace", "vector", "scalar",
}
NOT_OURS = {"up"}  # Prometheus's own


def _build_module():
    spec = importlib.util.spec_from_file_location("build_dashboards", os.path.join(REPO, "contrib/grafana/build_dashboards.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)           # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # ranges
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", "", expr)  # numbers (4e9)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS and not w.startswith("$") and "__" not in w and w not in NOT_OURS}


def queried() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in os.listdir(os.path.join(REPO, "contrib/grafana/dashboards")):
        with open(os.path.join(REPO, "contrib/grafana/dashboards", name)) as f:
            dash = json.load(f)
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                out.setdefault(f"{name}: {panel['title']}", set()).update(metric_names(target["expr"]))
    with open(os.path.join(REPO, "contrib/prometheus/alerts.yml")) as f:
        for group in yaml.safe_load(f)["groups"]:
            for rule in group["rules"]:
                out.setdefault(f"alert {rule['alert']}", set()).update(metric_names(rule["expr"]))
    return out


def exported(metrics_text: str) -> set[str]:
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, base, kind = line.split(" ", 3)
            names.add(base)
            suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum", "_created"],
                        "summary": ["_count", "_sum", "_created"]}.get(kind, [])
            names.update(base + s for s in suffixes)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_metric_name_parser():
    assert metric_names('histogram_quantile(0.95, sum by (le, route) (rate(sup_http_request_duration_seconds_bucket{name="x"}[$__rate_interval])))') == {"sup_http_request_duration_seconds_bucket"}
    assert metric_names("process_open_fds{job=\"sup\"} / process_max_fds > 0.8") == {"process_open_fds", "process_max_fds"}


def test_dashboard_json_is_generated():
    module = _build_module()
    for name, text in module.render().items():
        with open(os.path.join(REPO, "contrib/grafana/dashboards", name)) as f:
            assert f.read() == text, f"{name} is stale: run python contrib/grafana/build_dashboards.py"


def test_every_queried_metric_exists(server):
    # some traffic so the process has done a bit of everything
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    room = create_room(server, alice)
    send(server, alice, room, "hello")
    server.get("/_matrix/client/v3/sync?timeout=0", token=alice)
    server.post("/_matrix/media/v3/upload", token=root, data=b"x", headers={"Content-Type": "text/plain"})
    text = requests.get(server.metrics_url + "/metrics", timeout=10).text
    have = exported(text)
    wanted = queried()
    assert sum(len(v) for v in wanted.values()) > 20
    missing = {where: sorted(names - have) for where, names in wanted.items() if names - have}
    assert not missing, f"dashboards/alerts query metrics SUP does not export: {missing}"
    # and the runtime metrics really record (the reactor probe ticks every 0.25 s)
    import time

    deadline = time.monotonic() + 5
    for name in ("sup_reactor_tick_lag_seconds_count", "sup_persister_batch_events_count", "sup_db_pool_wait_seconds_count"):
        while not re.search(rf"^{name}(\{{[^}}]*\}})? [1-9]", text, re.M):
            assert time.monotonic() < deadline, f"{name} recorded nothing"
            time.sleep(0.1)
            text = requests.get(server.metrics_url + "/metrics", timeout=10).text


def test_prometheus_grafana_and_promtail_files_parse():
    for path in ("contrib/prometheus/prometheus.yml", "contrib/prometheus/prometheus.scaled.yml", "contrib/prometheus/alerts.yml",
                 "contrib/loki/promtail.yml", "contrib/grafana/provisioning/dashboards/sup.yml",
                 "contrib/grafana/provisioning/datasources/sup.yml"):
        with open(os.path.join(REPO, path)) as f:
            assert isinstance(yaml.safe_load(f), dict), path
    with open(os.path.join(REPO, "contrib/prometheus/alerts.yml")) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    assert len(rules) >= 10 and all({"alert", "expr", "labels", "annotations"} <= set(r) for r in rules)
