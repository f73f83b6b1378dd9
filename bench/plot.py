#!/usr/bin/python3
"""Draws athanor-bench --json results as a PNG.

    /usr/bin/python3 bench/plot.py results.json [chart.png] [--bars-n N] [--bars-from OTHER.json]

Left: one bar per test, its time as a ratio to the raw driver measured in the same run (1.0 is
raw sqlite3 / raw libpq), with the performance target of the test marked where it has one.
Right (when the JSON holds several sizes, from --scale): each test's cost per row against n,
relative to its cost at the smallest n (the legend gives the cost at the largest); a line that
rises is a path whose cost grows faster than its rows. With --bars-from, the bars are that
file's run (a single-size run with more repeats, the README's table) and the lines this one's.

Needs Debian's python3-matplotlib (cmake/install_deps.sh plot).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402

# The targets of issue 13 (ratio to raw sqlite3, n = 100000, file database).
TARGETS = {
    "orm_query_first": 1.6,
    "orm_get": 1.4,
    "orm_query_all": 1.5,
    "flush_no_pk": 1.4,
    "orm_flush": 1.4,
    "bulk_insert_mappings": 1.1,
    "core_insert": 1.1,
}


def main(argv):
    args = list(argv[1:])
    try:
        bars_n = take_option(args, "--bars-n", "a size")
        bars_from = take_option(args, "--bars-from", "a JSON file")
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if bars_n is not None:
        bars_n = int(bars_n)
    if not args:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = args[0]
    out = args[1] if len(args) > 1 else src.rsplit(".", 1)[0] + ".png"
    with open(src) as f:
        data = json.load(f)
    results = [r for r in data.get("results", []) if "gets_per_s" not in r]
    if not results:
        print(f"{src}: no results", file=sys.stderr)
        return 1
    # The bars: the run at --bars-n, else at the largest size of --scale (or the one n).
    scale = data.get("scale") or [data.get("n")]
    runs_by_size = split_by_size(results, scale)
    if bars_n is not None and bars_n not in scale:
        print(f"--bars-n {bars_n}: the run has sizes {scale}", file=sys.stderr)
        return 2
    bar_size = bars_n if bars_n is not None else scale[-1]
    bars = runs_by_size[scale.index(bar_size)]
    bar_data = data
    if bars_from is not None:
        with open(bars_from) as f:
            bar_data = json.load(f)
        other = [r for r in bar_data.get("results", []) if "gets_per_s" not in r]
        other_scale = bar_data.get("scale") or [bar_data.get("n")]
        bar_size = bars_n if bars_n is not None and bars_n in other_scale else other_scale[-1]
        bars = split_by_size(other, other_scale)[other_scale.index(bar_size)]
    bars = [r for r in bars if not r["test"].startswith("raw_")]

    two = len(scale) > 1
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(15 if two else 9, 7), squeeze=False)
    ax = axes[0][0]
    labels = [f'{r["suite"]}\n{r["test"]}' for r in bars]
    ratios = [r["ratio_vs_raw"] for r in bars]
    colors = []
    for r in bars:
        t = TARGETS.get(r["test"])
        colors.append("#999999" if t is None else ("#2e7d32" if r["ratio_vs_raw"] <= t else "#c62828"))
    y = range(len(bars))
    ax.barh(list(y), ratios, color=colors)
    for i, r in enumerate(bars):
        ax.text(r["ratio_vs_raw"] + 0.03, i, f'{r["ratio_vs_raw"]:.2f}x', va="center", fontsize=8)
        t = TARGETS.get(r["test"])
        if t is not None:
            ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / raw driver time in the same run (lower is better)")
    reps = bar_data.get("repeat")
    ax.set_title(f'ratio to raw at n={bar_size:,} ({bar_data.get("db", "?")}'
                 + (f', median of {reps}' if reps else '') + '); '
                 "black tick: target (green met, red not)", fontsize=9)

    if two:
        ax2 = axes[0][1]
        tests = []
        for r in results:
            key = (r["suite"], r["test"])
            if key not in tests:
                tests.append(key)
        for key in tests:
            xs, ys = [], []
            for size, rs in zip(scale, runs_by_size):
                for r in rs:
                    if (r["suite"], r["test"]) == key:
                        xs.append(size)
                        ys.append(r["per_row_us"] if "per_row_us" in r else 1e6 * r["median_s"] / max(1, r["n"]))
            if len(xs) > 1 and ys[0] > 0:
                # Each test's cost per row relative to its cost at the smallest n: 1.0 flat is
                # linear, a rising line a path that costs more per row as n grows.
                rel = [y / ys[0] for y in ys]
                style = "--" if key[1].startswith("raw_") else "-"
                ax2.plot(xs, rel, style, marker="o", label=f"{key[0]}/{key[1]} ({ys[-1]:.2f} us/row)", linewidth=1)
        ax2.set_xscale("log")
        ax2.axhline(1.0, color="#555555", linestyle=":", linewidth=1)
        ax2.set_xlabel("n (rows)")
        ax2.set_ylabel(f"cost per row / cost per row at n={scale[0]:,}")
        ax2.set_title("scaling: cost per row relative to the smallest n (flat = linear; dashed: raw)", fontsize=9)
        ax2.legend(fontsize=6, ncol=2, loc="upper left")

    machine = data.get("machine", {})
    fig.suptitle(f'athanor-bench, commit {data.get("commit", "?")}, SQLite {data.get("sqlite_version", "?")}, '
                 f'{machine.get("cpu", "") if isinstance(machine, dict) else machine}', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


def take_option(args, name, what):
    """Removes `name VALUE` from args and returns VALUE (None when absent)."""
    if name not in args:
        return None
    i = args.index(name)
    if i + 1 >= len(args):
        raise ValueError(f"{name} takes {what}")
    value = args[i + 1]
    del args[i:i + 2]
    return value


def split_by_size(results, scale):
    """The results of each --scale size, in order: the bench writes them size by size, each
    size's tests in the same order, so the k-th occurrence of a test is size k."""
    seen = {}
    out = [[] for _ in scale]
    for r in results:
        key = (r["suite"], r["test"])
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k < len(out):
            out[k].append(r)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv))
