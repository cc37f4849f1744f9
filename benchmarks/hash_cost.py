"""What keying the parse cache on the file's content costs: XXH64 of a 1M-row ratings
file (the cache key, as mfcore.data.cache computes it) and, for comparison, SHA-256 (what
model files record of their data, computed only when asked for) against parsing that
file without a cache.

    .venv/bin/python benchmarks/hash_cost.py [--rows 1000209]

Writes a synthetic ml-1m-shaped file (``user::item::rating::timestamp``, as ml-1m's
ratings.dat) to a temporary folder, then times, best of 5: the two hashes, a cold parse
(no cache) and a cached load (key + reading the cached arrays).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def best(f, n=5):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_209)
    rows = ap.parse_args().rows
    from mfcore.data import cache, load_file, synthetic_ratings
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MFCORE_CACHE_DIR"] = os.path.join(tmp, "cache")
        data = synthetic_ratings(rows, seed=0)
        path = os.path.join(tmp, "ratings.dat")
        with open(path, "w") as fh:
            uid, iid = data.user_ids[data.users], data.item_ids[data.items]
            for u, i, r, t in zip(uid, iid, data.ratings.astype(np.int64), data.timestamps):
                fh.write(f"{u}::{i}::{r}::{t}\n")
        size = os.path.getsize(path)
        t_key = best(lambda: cache.source_key([path]))
        t_hash = best(lambda: cache.file_digest(path))
        t_parse = best(lambda: load_file(path, sep="::", cache=False))
        load_file(path, sep="::")  # fill the cache
        t_cached = best(lambda: load_file(path, sep="::"))
        print(f"{rows:,} rows, {size / 2**20:.1f} MiB: XXH64 key {t_key * 1e3:.1f} ms, SHA-256 "
              f"{t_hash * 1e3:.1f} ms, parse without cache {t_parse * 1e3:.0f} ms, cached "
              f"load (key included) {t_cached * 1e3:.1f} ms; the key is {t_key / t_parse:.1%} "
              f"of a parse")


if __name__ == "__main__":
    main()
