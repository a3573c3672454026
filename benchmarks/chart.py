"""Draws docs/benchmarks.png from a benchmarks/results/*.json file.

    python chart.py RESULTS.json OUTPUT.png

Run by benchmarks/run with a Python that has matplotlib (it makes a venv
under .cache/bench/ when the system Python has none). Panels: records/s per
workload and thread count (log scale), CPU seconds per million records, W1
latency at the fixed input rate, and W5 restore time. When the results hold
them, two more charts beside OUTPUT: OUTPUT's stem + "-memory.png" (W2's peak
RSS against the store's keys) and + "-soak.png" (records/s, p99 latency and
RSS over the soak, with what of it RocksDB and the record caches hold).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SYSTEMS = [
    ("rill", "rill (C++ DSL)", "#d95f02"),
    ("kafka-streams", "Kafka Streams 4.1.1", "#1b9e77"),
    ("raw", "raw librdkafka", "#7570b3"),
    ("broker", "broker only", "#999999"),
]
NAMES = {s: n for s, n, _ in SYSTEMS}
COLORS = {s: c for s, _, c in SYSTEMS}
SHORT = {"w1": "W1", "w1-json": "W1\nserdes::json", "w1-nometrics": "W1\nmetrics off",
         "w2": "W2 count", "w3": "W3 window", "w4": "W4 count\nexactly-once", "w5": "W5",
         "w6": "W6 stream-\ntable join", "w7": "W7 stream-\nstream join"}


def ok_runs(results, kind):
    return [r for r in results["runs"] if r["kind"] == kind and r["status"] == "ok"]


def groups(runs):
    """(label, {system: run}) per workload and thread count, in run order."""
    out = {}
    for r in runs:
        label = f"{SHORT.get(r['workload'], r['workload'])}\n{r['threads']} thr"
        out.setdefault(label, {})[r["system"]] = r
    return list(out.items())


def bars(ax, grouped, value, ylabel, log=False):
    """Bars of `value` per group, one per system present in the group."""
    for g, (_, by_system) in enumerate(grouped):
        present = [s for s, _, _ in SYSTEMS if s in by_system]
        width = 0.8 / max(len(present), 1)
        for i, system in enumerate(present):
            x = g + (i - (len(present) - 1) / 2) * width
            ax.bar(x, by_system[system][value], width, color=COLORS[system])
    ax.set_xticks(range(len(grouped)))
    ax.set_xticklabels([label for label, _ in grouped], fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def legend(ax, systems):
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[s]) for s in systems]
    ax.legend(handles, [NAMES[s] for s in systems], loc="upper right", fontsize=8)


def memory_chart(results, output):
    runs = ok_runs(results, "memory")
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for system in ("rill", "kafka-streams"):
        points = sorted((r["store_keys"], r["peak_rss_mb"]) for r in runs if r["system"] == system)
        if points:
            ax.plot([k for k, _ in points], [m for _, m in points], marker="o",
                    color=COLORS[system], label=NAMES[system])
    budget = next((r["state_memory_budget_mb"] for r in runs if r.get("state_memory_budget_mb")),
                  None)
    if budget:
        ax.axhline(budget, color=COLORS["rill"], linestyle=":",
                   label=f"rill's state budget ({budget:,.0f} MiB)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys in the store (one input record per key)")
    ax.set_ylabel("peak RSS (MB, log scale)")
    ax.set_title("W2, one thread: peak RSS against keys (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=80)


def soak_chart(results, output):
    runs = ok_runs(results, "soak")
    if not runs:
        return
    soak = runs[0]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    panels = [(soak["samples"], "records_per_s", "records/s"),
              (soak["latency"], "p99_ms", f"p99 end-to-end, ms\n(per {soak['latency_s']} s)"),
              (soak["samples"], "rss_mb", "RSS (MB)")]
    for ax, (series, key, label) in zip(axes, panels):
        ax.plot([x["t_s"] / 60 for x in series], [x[key] for x in series], color=COLORS["rill"],
                marker="." if len(series) < 60 else None, label=label.split(" (")[0])
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    samples = soak["samples"]
    if samples and "rocksdb_mb" in samples[0]:
        # What of RSS grows with state, against its bounds.
        minutes = [x["t_s"] / 60 for x in samples]
        ax = axes[-1]
        ax.plot(minutes, [x["rocksdb_mb"] + x["cache_mb"] for x in samples], color="tab:green",
                label="RocksDB and record caches")
        ax.plot(minutes, [x["other_mb"] for x in samples], color="tab:gray",
                label="the rest of RSS")
        if "heap_allocated_mb" in samples[0]:
            ax.plot(minutes, [x["heap_allocated_mb"] for x in samples], color="tab:purple",
                    label="heap in use")
        ax.axhline(soak["rocksdb_limit_mb"] + soak["cache_max_mb"], color="tab:green",
                   linestyle="--", linewidth=1, label="their bounds together")
        ax.legend(loc="lower right", fontsize="small")
    axes[-1].set_xlabel("minutes")
    axes[0].set_title(f"W2 soak on rill, one thread, {soak['rate']:,} input records/s")
    fig.tight_layout()
    fig.savefig(output, dpi=80)


def main():
    results = json.load(open(sys.argv[1]))
    output = Path(sys.argv[2])
    memory_chart(results, output.with_name(output.stem + "-memory.png"))
    soak_chart(results, output.with_name(output.stem + "-soak.png"))
    throughput = groups(ok_runs(results, "throughput"))
    latency = ok_runs(results, "latency")
    restore = ok_runs(results, "restore")

    fig = plt.figure(figsize=(12, 12))
    grid = fig.add_gridspec(3, 2, height_ratios=[3, 2, 2], width_ratios=[3, 1])
    ax = fig.add_subplot(grid[0, :])
    bars(ax, throughput, "records_per_s", "records/s (log scale)", log=True)
    ax.set_title("Throughput, first input to last output (higher is better)")
    legend(ax, ["rill", "kafka-streams", "raw"])

    ax = fig.add_subplot(grid[1, :])
    bars(ax, throughput, "cpu_s_per_million", "CPU s per million records")
    ax.set_title("CPU per record, all threads (lower is better)")

    ax = fig.add_subplot(grid[2, 0])
    xs = list(range(len(latency)))
    colors = [COLORS.get(r["system"], "grey") for r in latency]
    ax.bar([x - 0.2 for x in xs], [r["p50_ms"] for r in latency], 0.4, color=colors, alpha=0.5)
    ax.bar([x + 0.2 for x in xs], [r["p99_ms"] for r in latency], 0.4, color=colors)
    ax.set_xticks(xs)
    ax.set_xticklabels([NAMES.get(r["system"], r["system"]) for r in latency], fontsize=8)
    ax.set_ylabel("ms (log scale)")
    ax.set_yscale("log")
    rate = results["parameters"]["latency_rate"]
    ax.set_title(f"W1 latency at {rate:,} records/s: p50 (light), p99 (lower is better)",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)

    ax = fig.add_subplot(grid[2, 1])
    xs = list(range(len(restore)))
    ax.bar(xs, [r["restore_s"] for r in restore],
           color=[COLORS.get(r["system"], "grey") for r in restore])
    ax.set_xticks(xs)
    short = {"rill": "rill", "kafka-streams": "Kafka\nStreams"}
    ax.set_xticklabels([f"{short.get(r['system'], r['system'])}, {r['threads']} thr"
                        for r in restore], fontsize=8)
    ax.set_ylabel("s")
    keys = results["parameters"]["restore_keys"]
    ax.set_title(f"W5 restore of {keys:,} keys", fontsize=10)
    ax.grid(axis="y", alpha=0.3)

    fig.suptitle(
        f"rill, Kafka Streams and raw librdkafka on one broker: {results['date']}, "
        f"{results['mode']} mode, {results['machine']['cpus']} CPUs"
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=80)


if __name__ == "__main__":
    main()
