"""The node's status as Prometheus text exposition, served on loopback (`zkinfer serve --metrics-port`).

Only 127.0.0.1 is bound: the figures are not secret, but a prover host should not grow a public port by
default; put a scraper (or a reverse proxy) on the same host.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"
PREFIX = "zkinfer_node"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exposition(st: dict) -> str:
    """Prometheus text format of `node.status(DIR)`."""
    lines = [f"# HELP {PREFIX}_postings Postings seen, by state.", f"# TYPE {PREFIX}_postings gauge"]
    lines += [f'{PREFIX}_postings{{state="{k}"}} {v}' for k, v in st["postings"].items()]
    gauges = {
        "backlog": (st["backlog"], "Postings not yet settled (waiting, queued, submitting)."),
        "suspended": (int(bool(st["suspended"])), "1 while the gate suspends the model (nothing is submitted)."),
        "cursor_block": (st["cursor_block"] or 0, "Last block whose events were read."),
        "acted_per_minute": (st["acted_per_minute"], "Postings acted on per minute, last 10 minutes."),
    }
    for name, (value, text) in gauges.items():
        lines += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} gauge", f"{PREFIX}_{name} {value}"]
    lat = st["latency_s"]
    lines += [f"# HELP {PREFIX}_latency_seconds Posting to on-chain action (block timestamps).",
              f"# TYPE {PREFIX}_latency_seconds summary"]
    for q, key in (("0.5", "median"), ("0.9", "p90"), ("1", "max")):
        if key in lat:
            lines.append(f'{PREFIX}_latency_seconds{{quantile="{q}"}} {lat[key]}')
    lines.append(f"{PREFIX}_latency_seconds_count {lat['n']}")
    lines += [f"# HELP {PREFIX}_incidents_total Incidents recorded (kept ones), by kind.",
              f"# TYPE {PREFIX}_incidents_total counter"]
    lines += [f'{PREFIX}_incidents_total{{kind="{k}"}} {v}' for k, v in sorted(st["incident_counts"].items())]
    return "\n".join(lines) + "\n"


def serve_metrics(serve_dir, port: int) -> ThreadingHTTPServer:
    """Serve GET /metrics on 127.0.0.1:`port` from a daemon thread; returns the server (call shutdown())."""
    from .node import status

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = exposition(status(serve_dir)).encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every few seconds: keep them out of the node's log
            pass

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    threading.Thread(target=server.serve_forever, name="zkinfer-metrics", daemon=True).start()
    return server
