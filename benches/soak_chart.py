#!/usr/bin/env python3
"""Draws target/soak.csv (from `cargo bench --bench compare -- --soak 600`) as benches/soak.png:
the server's RSS, open descriptors and open connections over the soak. Needs matplotlib."""
import csv, pathlib
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

root = pathlib.Path(__file__).resolve().parent.parent
rows = list(csv.DictReader(open(root / "target" / "soak.csv")))
t = [int(r["seconds"]) / 60 for r in rows]
fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
for ax, key, label in zip(axes, ["rss_kib", "fds", "open_connections"],
                          ["RSS (MiB)", "open descriptors", "open connections (gauge)"]):
    values = [int(r[key]) / (1024 if key == "rss_kib" else 1) for r in rows]
    ax.plot(t, values, lw=1.5)
    ax.set_ylabel(label)
    ax.set_ylim(0, max(values) * 1.25 + 1)
    ax.grid(alpha=0.3)
axes[-1].set_xlabel("minutes")
fig.suptitle("webui-doctor serve: 1,000 SSE streams, 100 ended and 100 opened per second, 200 requests per second")
fig.tight_layout()
fig.savefig(root / "benches" / "soak.png", dpi=100)
print("wrote", root / "benches" / "soak.png")
