"""Queries Skein's Prometheus HTTP API with the `prometheus-api-client` package.

The integration tests send metrics with the OpenTelemetry SDK (send_metrics.py),
then run this script; it prints one JSON object with what the client got back,
and the test compares it with what the SDK sent. POST, as Grafana uses.

Usage: query_prometheus.py --url http://127.0.0.1:7300 --job SERVICE
"""

import argparse
import datetime
import json
import sys

from prometheus_api_client import PrometheusConnect


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--job", required=True)
    args = parser.parse_args()

    prom = PrometheusConnect(url=args.url, method="POST")
    job = f'job="{args.job}"'
    now = datetime.datetime.now(datetime.timezone.utc)
    # The client rounds times to whole seconds: an end of `now` could fall
    # before points sent a moment ago, so ranges end a step later.
    end = now + datetime.timedelta(seconds=15)
    result = {
        "names": prom.get_label_values("__name__"),
        "labels": prom.get_label_names(),
        "requests_total": prom.custom_query(f"sum({{__name__=\"http_server_requests_total\",{job}}})"),
        "requests_by_route": prom.custom_query(f"sum by (http_route) (http_server_requests_total{{{job}}})"),
        "duration_count": prom.custom_query(f"sum(http_server_duration_milliseconds_count{{{job}}})"),
        "rpc_native_count": prom.custom_query(f"count(rpc_server_duration_milliseconds{{{job}}})"),
        "range": prom.custom_query_range(
            f"sum(http_server_requests_total{{{job}}})",
            start_time=now - datetime.timedelta(minutes=2),
            end_time=end,
            step="15s",
        ),
        "metadata": prom.get_metric_metadata("http_server_requests_total"),
        "series": prom.get_series(
            now - datetime.timedelta(minutes=5),
            end,
            params={"match[]": f"queue_depth{{{job}}}"},
        ),
    }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
