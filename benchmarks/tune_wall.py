"""Wall time of one `mfcore tune` search with --jobs 1, --jobs 2 and on a 2-worker Dask
cluster on the loopback (`dask scheduler` + 2 x `dask worker --nthreads 1`), run in turns,
medians reported, and whether the three print the same trials table (the timings aside).

    python benchmarks/tune_wall.py [--repeats 3] [--kill] [-- TUNE OPTIONS...]

Default search: the issue's, `--dataset ml-100k --model mfbs --random 8 --folds 3 --epochs 4
--seed 0`. --kill also runs the Dask search once more and SIGKILLs one worker process
(its nanny starts a new one) a few seconds in. Needs `pip install 'mfcore[dask]'` and the
data home (MFCORE_DATA_HOME). Run it alone: the machine has two cores. With the kernel's
autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled = 1) the CPU is shared
per session, not per process: while other sessions keep both cores busy, this session
gets the same share with one worker or two, and --jobs 2 cannot beat --jobs 1 (the
"workers busy" figure then stays near 100% while each worker runs at half speed).
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

DEFAULT = ["--dataset", "ml-100k", "--model", "mfbs", "--random", "8", "--folds", "3",
           "--epochs", "4", "--seed", "0"]
BIN = os.path.dirname(sys.executable)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tune(args, extra):
    t0 = time.perf_counter()
    out = subprocess.run([os.path.join(BIN, "mfcore"), "tune", *args, *extra, "--json", "-q"],
                         capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout)


def busy(result, workers=2):
    """Share of the workers' time spent inside tasks (fits and scoring) during the
    search: near 1, the workers were never idle (what is left of the wall time is start-up,
    data loading and shipping, or other processes on the cores)."""
    inside = sum(f["seconds"] for t in result["trials"] for f in t["folds"])
    return inside / (result["wall_seconds"] * (1 if result["backend"].startswith("1 job")
                                                else workers))


def table(result):
    """The trials without timings: what must be identical."""
    def strip(d):
        return {k: ([strip(f) for f in v] if k == "folds" else v) for k, v in d.items()
                if k != "seconds"}
    return [strip(t) for t in result["trials"]]


def start_cluster():
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], **quiet)]
    time.sleep(2)
    for _ in range(2):
        procs.append(subprocess.Popen([os.path.join(BIN, "dask"), "worker", address,
                                       "--nthreads", "1", "--host", "127.0.0.1",
                                       "--no-dashboard"], **quiet))
    from distributed import Client
    with Client(address, timeout=30) as c:
        c.wait_for_workers(2, timeout=60)
        # warm the workers as the local pool is warm: import mfcore and its kernels once
        c.run(lambda: __import__("mfcore.tune"))
    return address, procs


def worker_pids(address):
    from distributed import Client
    with Client(address, timeout=30) as c:
        return c.run(os.getpid)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--kill", action="store_true")
    p.add_argument("rest", nargs="*")
    a = p.parse_args()
    args = a.rest or DEFAULT
    address, procs = start_cluster()
    try:
        cold, _ = tune(args, ["--scheduler", address])  # the workers load the kernels
        print(f"dask, first search on fresh workers: {cold:.2f} s", flush=True)
        walls = {"jobs 1": [], "jobs 2": [], "dask 2 workers": []}
        inside = {k: [] for k in walls}
        tables = {}
        for _ in range(a.repeats):
            for name, extra in (("jobs 1", ["--jobs", "1"]), ("jobs 2", ["--jobs", "2"]),
                                ("dask 2 workers", ["--scheduler", address])):
                wall, result = tune(args, extra)
                walls[name].append(wall)
                inside[name].append(result["wall_seconds"])
                tables.setdefault(name, table(result))
                assert table(result) == tables[name], f"{name}: not reproducible"
                print(f"{name:>15}: {wall:6.2f} s, of which the search {result['wall_seconds']:6.2f}"
                      f" s, workers busy {busy(result):.0%} (retried {result['retried']})",
                      flush=True)
        med = {k: statistics.median(v) for k, v in walls.items()}
        n = len(tables["jobs 1"])
        print(f"\nmedian of {a.repeats}: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
        print(f"jobs 2 / jobs 1 = {med['jobs 2'] / med['jobs 1']:.2f} (ratio of the medians); "
              f"median of the per-turn ratios "
              f"{statistics.median(b / a for a, b in zip(walls['jobs 1'], walls['jobs 2'])):.2f}")
        ins = {k: statistics.median(v) for k, v in inside.items()}
        print("median search time inside the command (no start-up, imports, data loading): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in ins.items()))
        print(f"dask overhead vs jobs 2: {(med['dask 2 workers'] - med['jobs 2']) / n:+.3f} s "
              f"per trial ({n} trials)")
        same = tables["jobs 1"] == tables["jobs 2"] == tables["dask 2 workers"]
        print(f"identical tables (timings aside): {same}")
        if a.kill:
            pids = worker_pids(address)
            victim = sorted(pids)[0]
            t0 = time.perf_counter()
            child = subprocess.Popen([os.path.join(BIN, "mfcore"), "tune", *args,
                                      "--scheduler", address, "--json", "-q"],
                                     stdout=subprocess.PIPE, text=True)
            time.sleep(max(1.0, med["dask 2 workers"] / 3))
            os.kill(pids[victim], signal.SIGKILL)
            out, _ = child.communicate()
            result = json.loads(out)
            print(f"\nkilled worker {victim} (pid {pids[victim]}) "
                  f"{med['dask 2 workers'] / 3:.1f} s in: wall {time.perf_counter() - t0:.2f} s, "
                  f"{len(result['trials'])} trials, retried {result['retried']} of "
                  f"{result['tasks']} tasks, identical table: "
                  f"{table(result) == tables['jobs 1']}")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
