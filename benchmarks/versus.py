"""Time the benchmark rows of two source trees side by side, row by row.

    python benchmarks/versus.py --old /tmp/prev --new . [-k mfb] [--json out.json]

For each pytest-benchmark row present in both trees (``benchmarks/test_bench_*.py``), run
the row once in each tree, back to back (the order alternates), each in a fresh ``pytest``
process with that tree first on ``PYTHONPATH`` and its own warm Numba cache, ``--repeats``
times. Pairing runs in time keeps a shared, noisy machine's load alike for both sides; the
table gives each side's median and the median of the pairs' new / old. Make the old tree with e.g.
``git worktree add /tmp/prev HEAD~1``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchutil import tree_env

FILES = ("benchmarks/test_bench_data.py", "benchmarks/test_bench_mf.py", "benchmarks/test_bench_nn.py")


def _collect(tree, files, keyword):
    cmd = [sys.executable, "-m", "pytest", *files, "--collect-only", "-q", "-p", "no:cacheprovider"]
    if keyword:
        cmd += ["-k", keyword]
    out = subprocess.run(cmd, cwd=tree, env=tree_env(tree), capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if "::" in line]


def _run(tree, test_id):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, "-m", "pytest", test_id, "--benchmark-only", "-q",
           "-p", "no:cacheprovider", f"--benchmark-json={out}"]
    res = subprocess.run(cmd, cwd=tree, env=tree_env(tree), capture_output=True, text=True)
    try:
        data = json.loads(Path(out).read_text())
        return data["benchmarks"][0]["stats"]["median"]
    except (ValueError, KeyError, IndexError):
        sys.stderr.write(f"{tree}: {test_id} failed\n{res.stdout[-2000:]}{res.stderr[-2000:]}\n")
        return None
    finally:
        os.unlink(out)


def fmt(seconds):
    return "-" if seconds is None else f"{1000 * seconds:,.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="source tree of the reference")
    p.add_argument("--new", default=".", help="source tree to compare (default: this one)")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k filter")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--repeats", type=int, default=1,
                   help="paired runs per row (old and new alternating); the table gives "
                        "the median of each side and of the per-pair ratios")
    a = p.parse_args()
    old, new = Path(a.old).resolve(), Path(a.new).resolve()
    in_old = set(_collect(old, FILES, a.keyword))  # once: each collection starts pytest
    rows = [t for t in _collect(new, FILES, a.keyword) if t in in_old]
    results = []
    print(f"{'row':58s} {'old ms':>10s} {'new ms':>10s} {'new/old':>8s}", flush=True)
    for n, test_id in enumerate(rows):
        pairs = []
        for r in range(max(1, a.repeats)):
            order = (old, new) if (n + r) % 2 == 0 else (new, old)
            t = {tree: _run(tree, test_id) for tree in order}
            if t[old] and t[new]:
                pairs.append((t[old], t[new]))
        o = statistics.median(p[0] for p in pairs) if pairs else None
        w = statistics.median(p[1] for p in pairs) if pairs else None
        ratio = statistics.median(p[1] / p[0] for p in pairs) if pairs else None
        results.append({"row": test_id, "old_s": o, "new_s": w, "ratio": ratio,
                        "pairs": pairs})
        print(f"{test_id.split('::')[-1]:58s} {fmt(o):>10s} {fmt(w):>10s} "
              f"{'-' if ratio is None else f'{ratio:.3f}':>8s}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
