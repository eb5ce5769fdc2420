#!/usr/bin/env python3
"""Scrape a Sluice broker's /metrics while a benchmark runs, then draw the
series the Grafana dashboard shows (docs/grafana/sluice.json): throughput,
request latency percentiles from the histogram buckets, requests per second,
size on disk.

Not part of CI. Needs matplotlib; use a throwaway venv:

    python3 -m venv /tmp/plot && /tmp/plot/bin/pip install matplotlib
    /tmp/plot/bin/python benches/metrics_plot.py --metrics 127.0.0.1:9393 \
        --seconds 40 --out docs/metrics-example.png

(docs/operations.md says how the picture in docs/ was made.)
"""

import argparse
import re
import time
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(addr):
    """One scrape as {(name, labels): value}."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def total(s, name, match=""):
    return sum(v for (n, l), v in s.items() if n == name and match in l)


def quantile(q, before, after, api):
    """histogram_quantile over the bucket increase between two scrapes."""
    buckets = []
    for (n, l), v in after.items():
        if n == "sluice_request_duration_seconds_bucket" and f'api="{api}"' in l:
            le = re.search(r'le="([^"]+)"', l).group(1)
            bound = float("inf") if le in ("+Inf", "inf") else float(le)
            buckets.append((bound, v - before.get((n, l), 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            # Linear interpolation inside the bucket, as Prometheus does.
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_bound, prev_count = bound, count
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", default="127.0.0.1:9393")
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--out", default="metrics.png")
    ap.add_argument("--title", default="Sluice broker, scraped every second")
    args = ap.parse_args()

    scrapes = []
    start = time.time()
    while time.time() - start < args.seconds:
        try:
            scrapes.append((time.time() - start, scrape(args.metrics)))
        except OSError:
            pass
        time.sleep(args.interval)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, produce, fetch, p50, p99, p999, size = [], [], [], [], [], [], []
    rps = {"Produce": [], "Fetch": []}
    for (t0, a), (t1, b) in zip(scrapes, scrapes[1:]):
        dt = t1 - t0
        t.append(t1)
        produce.append((total(b, "sluice_produce_bytes_total") - total(a, "sluice_produce_bytes_total")) / dt / 1e6)
        fetch.append((total(b, "sluice_fetch_bytes_total") - total(a, "sluice_fetch_bytes_total")) / dt / 1e6)
        p50.append(quantile(0.5, a, b, "Produce"))
        p99.append(quantile(0.99, a, b, "Produce"))
        p999.append(quantile(0.999, a, b, "Produce"))
        for api, xs in rps.items():
            m = f'api="{api}"'
            xs.append((total(b, "sluice_requests_total", m) - total(a, "sluice_requests_total", m)) / dt)
        size.append(total(b, "sluice_partition_size_bytes") / 1e6)

    ms = lambda xs: [x * 1e3 if x is not None else float("nan") for x in xs]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    ax = axes[0][0]
    ax.plot(t, produce, label="produce")
    ax.plot(t, fetch, label="fetch")
    ax.set_title("Throughput (MB/s of record batches)")
    ax.legend()
    ax = axes[0][1]
    ax.plot(t, ms(p50), label="p50")
    ax.plot(t, ms(p99), label="p99")
    ax.plot(t, ms(p999), label="p99.9")
    ax.set_title("Produce request latency (ms, from histogram buckets)")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[1][0]
    for api, xs in rps.items():
        ax.plot(t, xs, label=api)
    ax.set_title("Requests per second")
    ax.legend()
    ax = axes[1][1]
    ax.plot(t, size)
    ax.set_title("Size on disk, all partitions (MB)")
    for ax in axes[1]:
        ax.set_xlabel("seconds")
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"{len(scrapes)} scrapes -> {args.out}")


if __name__ == "__main__":
    main()
