#!/usr/bin/env python3
"""Draws target/bench-sizes.csv (from `cargo bench --bench compare -- --sizes 10000,100000,1000000`)
as benches/sizes.png: time and peak RSS against socket count, webui-doctor and `ss` side by side.
Needs matplotlib."""
import csv, pathlib
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

root = pathlib.Path(__file__).resolve().parent.parent
rows = list(csv.DictReader(open(root / "target" / "bench-sizes.csv")))
# (pair as the benchmark names it, webui-doctor's label, ss's label, colour)
shown = [
    ("sockets --format json vs ss -tanoei", "sockets --format json", "ss -tanoei", "tab:blue"),
    ("sockets -i --format json vs ss -tani", "sockets -i --format json", "ss -tani", "tab:purple"),
    ("sockets (table) vs ss -tanoe", "sockets (table)", "ss -tanoe", "tab:green"),
    ("sockets --summary vs ss -tan", "sockets --summary", "ss -tan", "tab:red"),
    ("check vs ss -tan", "check", None, "tab:orange"),
]
fig, (t_ax, m_ax) = plt.subplots(1, 2, figsize=(12, 5))
for pair, ours, theirs, colour in shown:
    data = sorted((int(r["sockets"]), r) for r in rows if r["pair"] == pair)
    if not data:
        continue
    n = [d[0] for d in data]
    for ax, key, scale in [(t_ax, "_ms", 1.0), (m_ax, "_rss_kib", 1 / 1024)]:
        ax.plot(n, [float(d[1]["a" + key]) * scale for d in data], "o-", color=colour, label=f"webui-doctor {ours}")
        if theirs:
            ax.plot(n, [float(d[1]["b" + key]) * scale for d in data], "s--", color=colour, alpha=0.6, label=theirs)
for ax, label in [(t_ax, "median wall time (ms)"), (m_ax, "peak RSS (MiB), each command's own")]:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TCP sockets on the host")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")
t_ax.legend(fontsize=8)
fig.suptitle("webui-doctor against ss, same fixture, same run (solid: webui-doctor, dashed: ss)")
fig.tight_layout()
fig.savefig(root / "benches" / "sizes.png", dpi=100)
print("wrote", root / "benches" / "sizes.png")
