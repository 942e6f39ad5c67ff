"""Write contrib/grafana/dashboards/*.json from the panel lists below (``python contrib/grafana/build_dashboards.py``).

Every expression names only metrics SUP exports (tests/server/ops/test_dashboards.py checks them against a
running server's /metrics, and that the JSON files are up to date with this script).
"""

from __future__ import annotations

import json
import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = "[$__rate_interval]"


def q(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend}


def p95(metric: str, by: str = "", extra: str = "", quantile: float = 0.95) -> str:
    sel = f"{{{extra}}}" if extra else ""
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({metric}_bucket{sel}{RATE})))"


# (title, unit, [queries]) per row
ROWS: list[tuple[str, list[tuple[str, str, list[dict[str, Any]]]]]] = [
    ("HTTP", [
        ("Requests per second by route", "reqps", [q(f"topk(15, sum by (route) (rate(sup_http_requests_total{RATE})))", "{{route}}")]),
        ("Responses by status", "reqps", [q(f"sum by (status) (rate(sup_http_requests_total{RATE}))", "{{status}}")]),
        ("Server errors (5xx) by route", "reqps", [q(f'sum by (route) (rate(sup_http_requests_total{{status=~"5.."}}{RATE}))', "{{route}}")]),
        ("Request latency (all routes)", "s", [q(p95("sup_http_request_duration_seconds", quantile=0.5), "p50"),
                                               q(p95("sup_http_request_duration_seconds"), "p95"),
                                               q(p95("sup_http_request_duration_seconds", quantile=0.99), "p99")]),
        ("p95 latency by route (slowest 10)", "s", [q(f"topk(10, {p95('sup_http_request_duration_seconds', 'route')})", "{{route}}")]),
    ]),
    ("Sync", [
        ("Sync compute time", "s", [q(p95("sup_sync_compute_seconds", "kind"), "p95 {{kind}}"),
                                    q(p95("sup_sync_compute_seconds", "kind", quantile=0.5), "p50 {{kind}}")]),
        ("Open long-polls (requests waiting in the notifier)", "short", [q("sum(sup_notifier_waiters)", "waiting")]),
        ("Notifier wake-ups by stream", "ops", [q(f"sum by (stream) (rate(sup_notifier_notifications_total{RATE}))", "{{stream}}")]),
        ("Sliding sync compute time", "s", [q(p95("sup_sliding_sync_compute_seconds", "kind"), "p95 {{kind}}")]),
    ]),
    ("Event persister and database", [
        ("Persister batch size (events per commit)", "short", [q(p95("sup_persister_batch_events", quantile=0.5), "p50"),
                                                                q(p95("sup_persister_batch_events"), "p95"),
                                                                q(f"rate(sup_persister_batch_events_count{RATE})", "commits/s")]),
        ("Persist commit latency", "s", [q(p95("sup_db_txn_duration_seconds", extra='name="persist_events"', quantile=0.5), "p50"),
                                         q(p95("sup_db_txn_duration_seconds", extra='name="persist_events"'), "p95"),
                                         q(p95("sup_db_txn_duration_seconds", extra='name="persist_events"', quantile=0.99), "p99")]),
        ("Database pool wait", "s", [q(p95("sup_db_pool_wait_seconds", "pool"), "p95 {{pool}}"),
                                     q(p95("sup_db_pool_wait_seconds", "pool", quantile=0.99), "p99 {{pool}}")]),
        ("Slowest transactions (p95, top 10)", "s", [q(f"topk(10, {p95('sup_db_txn_duration_seconds', 'name')})", "{{name}}")]),
        ("Transactions per second (top 10)", "ops", [q(f"topk(10, sum by (name) (rate(sup_db_txn_duration_seconds_count{RATE})))", "{{name}}")]),
        ("Transaction retries and errors", "ops", [q(f"sum by (name) (rate(sup_db_txn_retries_total{RATE}))", "retry {{name}}"),
                                                   q(f"sum by (name) (rate(sup_db_txn_errors_total{RATE}))", "error {{name}}")]),
    ]),
    ("Process", [
        ("Reactor lag", "s", [q(p95("sup_reactor_tick_lag_seconds", quantile=0.5), "p50"), q(p95("sup_reactor_tick_lag_seconds", quantile=0.99), "p99"),
                              q(f"max_over_time(histogram_quantile(1, rate(sup_reactor_tick_lag_seconds_bucket{RATE}))[5m:])", "max")]),
        ("GC pauses", "s", [q(p95("sup_gc_pause_seconds", "generation", quantile=0.99), "p99 gen {{generation}}"),
                            q(f"sum by (generation) (rate(sup_gc_pause_seconds_sum{RATE}))", "time share gen {{generation}}")]),
        ("GC collections", "ops", [q(f"sum by (generation) (rate(python_gc_collections_total{RATE}))", "gen {{generation}}")]),
        ("CPU", "percentunit", [q(f"rate(process_cpu_seconds_total{RATE})", "{{instance}}")]),
        ("Resident memory", "bytes", [q("process_resident_memory_bytes", "{{instance}}")]),
        ("Open file descriptors", "short", [q("process_open_fds", "open {{instance}}"), q("process_max_fds", "max {{instance}}")]),
    ]),
    ("Federation", [
        ("Outbound queues", "short", [q("sum(sup_federation_outbound_pending_pdus)", "PDUs queued"),
                                      q("sum(sup_federation_outbound_pending_edus)", "EDUs queued")]),
        ("Destinations backing off / catching up", "short", [q("sum(sup_federation_outbound_destinations_backing_off)", "backing off"),
                                                             q("sum(sup_federation_outbound_destinations_catching_up)", "catching up")]),
        ("Longest backoff", "s", [q("max(sup_federation_outbound_max_backoff_seconds)", "max backoff")]),
        ("Outbound transactions", "ops", [q(f"sum by (outcome) (rate(sup_federation_outbound_transactions_total{RATE}))", "{{outcome}}"),
                                          q(f"rate(sup_federation_outbound_pdus_total{RATE})", "PDUs sent"),
                                          q(f"rate(sup_federation_outbound_edus_total{RATE})", "EDUs sent")]),
        ("Outbound requests", "ops", [q(f"sum by (method, outcome) (rate(sup_federation_client_requests_total{RATE}))", "{{method}} {{outcome}}")]),
        ("Inbound EDUs", "ops", [q(f"sum by (edu_type, outcome) (rate(sup_federation_inbound_edus_total{RATE}))", "{{edu_type}} {{outcome}}")]),
    ]),
    ("Media and push", [
        ("Uploads", "ops", [q(f"sum by (deduplicated) (rate(sup_media_uploads_total{RATE}))", "deduplicated={{deduplicated}}")]),
        ("Upload bandwidth", "Bps", [q(f"rate(sup_media_upload_bytes_total{RATE})", "bytes/s")]),
        ("Downloads", "ops", [q(f"sum by (kind) (rate(sup_media_downloads_total{RATE}))", "{{kind}}")]),
        ("Thumbnail time", "s", [q(p95("sup_media_thumbnail_seconds", "method"), "p95 {{method}}"),
                                 q(f"sum by (reason) (rate(sup_media_thumbnail_failures_total{RATE}))", "failed {{reason}}")]),
        ("Push gateway requests", "ops", [q(f"sum by (result) (rate(sup_push_notifications_total{RATE}))", "{{result}}")]),
        ("Pusher dispatch lag (stream positions)", "short", [q("max(sup_pusher_dispatch_lag)", "behind")]),
    ]),
]


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid = 1
    y = 0
    for row_title, row_panels in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        for i, (title, unit, targets) in enumerate(row_panels):
            panels.append({
                "id": pid, "type": "timeseries", "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
                "targets": [{**t, "refId": chr(ord("A") + j), "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                            for j, t in enumerate(targets)],
            })
            pid += 1
        y += 8 * ((len(row_panels) + 1) // 2)
    return {
        "uid": "sup-overview", "title": "SUP homeserver", "tags": ["sup", "matrix"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        ]},
        "annotations": {"list": []}, "editable": True, "panels": panels,
    }


def render() -> dict[str, str]:
    return {"sup-overview.json": json.dumps(dashboard(), indent=1, sort_keys=True) + "\n"}


if __name__ == "__main__":
    for name, text in render().items():
        with open(os.path.join(HERE, "dashboards", name), "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote dashboards/{name}")
