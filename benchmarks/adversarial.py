"""An adversarial corpus for the command line, kept apart from the tests (issue 12).

Runs ``mfcore`` as a real process on bad ratings files, bad model files, bad arguments,
outputs that would destroy inputs, training that diverges, and signals, and checks for
each case what a user is promised:

- no Python traceback, and at most one error line (``error:`` / ``Error:``) on stderr;
- the expected exit code (0 for input that is odd but valid, 1 for bad input, 2 for
  usage errors, 130/143 for SIGINT/SIGTERM);
- no data loss: every file a case protects has the same bytes afterwards;
- no half-written output and no leftover temp file in the case's folder;
- no silent wrong result: where a case succeeds, what it wrote is checked (a stale cache
  must not serve old ratings, a saved model must be the one trained on this file).

    MFCORE_DATA_HOME=../shared/data .venv/bin/python benchmarks/adversarial.py [-k WORD] [-v]

Each case runs in its own temporary folder with its own parse cache (MFCORE_CACHE_DIR).
The exit code is 1 when any case falls short. Nothing here is imported by the tests.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MFCORE = [sys.executable, "-m", "mfcore"]
SMALL_ROWS = 3000


@dataclass
class Case:
    name: str
    args: list                       # after "mfcore"; "{dir}" is the case's folder
    codes: tuple = (1,)              # acceptable exit codes
    setup: object = None             # f(folder) -> None: files the case needs
    protect: tuple = ()              # files (relative) that must keep their bytes
    absent: tuple = ()               # files (relative) that must not exist afterwards
    check: object = None             # f(folder, proc) -> None or a complaint
    signal_after: tuple | None = None  # (text on stderr to wait for, signal)
    needle: str | None = None        # the error line must contain this
    env: dict = field(default_factory=dict)


# ---- material ---------------------------------------------------------------------------
def small_data(folder, name="r.tsv", rows=SMALL_ROWS):
    src = Path(os.environ.get("MFCORE_DATA_HOME", HERE.parent.parent / "shared" / "data"))
    lines = (src / "ml-100k" / "u.data").read_text().splitlines()[:rows]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


_GOOD_MODEL = {}


def good_model(folder, name="m.npz"):
    """A model trained on the small data (made once, copied per case)."""
    if "path" not in _GOOD_MODEL:
        base = Path(tempfile.mkdtemp(prefix="adv-model-"))
        small_data(base)
        out = subprocess.run([*MFCORE, "train", "--data", str(base / "r.tsv"), "--factors", "3",
                              "--epochs", "1", "-q", "--save", str(base / "m.npz")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        _GOOD_MODEL["path"] = base / "m.npz"
    shutil.copy(_GOOD_MODEL["path"], folder / name)
    return folder / name


def mutate_model(edit):
    """A setup writing a good model's arrays and metadata after ``edit(arrays, meta)``."""
    def setup(folder):
        good_model(folder, "good.npz")
        small_data(folder)
        with np.load(folder / "good.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode())
        out = edit(arrays, meta)
        if isinstance(out, tuple):
            arrays, meta = out
        if meta is not None:
            text = meta if isinstance(meta, (bytes, str)) else json.dumps(meta)
            arrays["meta"] = np.frombuffer(text.encode() if isinstance(text, str) else text,
                                           np.uint8)
        np.savez(folder / "bad.npz", **arrays)
        (folder / "good.npz").unlink()
    return setup


def write(name, content):
    def setup(folder):
        data = content(folder) if callable(content) else content
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def both(*setups):
    def setup(folder):
        for s in setups:
            s(folder)
    return setup


# ---- the corpus -------------------------------------------------------------------------
def ratings_cases():
    """Ratings files a user might hand over, valid but odd or broken."""
    def train(name, codes=(1,), needle=None, extra=()):
        return ["train", "--data", "{dir}/" + name, "--epochs", "1", "--factors", "2", "-q",
                "--save", "{dir}/out.npz", *extra]

    files = {
        "empty": (b"", (1,), "empty"),
        "only newlines": (b"\n\n\n", (1,), None),
        "nul bytes": (b"1\t2\t3\t4\n\0\0\0\n", (1,), None),
        "70k-char first line": (b"7" * 70_000 + b"\n1\t2\t3\t4\n", (1,), "line 1"),
        "one rating": (b"1\t1\t5\t0\n", (0, 1), None),
        "rating nan": (b"1\t1\tnan\t0\n2\t2\t3\t0\n", (1,), "line 1"),
        "rating inf": (b"1\t1\t3\t0\n2\t2\tinf\t0\n", (1,), "line 2"),
        "rating 1e300": (b"1\t1\t3\t0\n2\t2\t1e300\t0\n", (1,), "line 2"),
        "rating negative": (b"1\t1\t-3\t0\n2\t2\t3\t0\n", (0, 1), None),
        "id beyond int64": (b"1\t1\t3\t0\n99999999999999999999999\t2\t3\t0\n", (0, 1), None),
        "id float": (b"1.5\t1\t3\t0\n2\t2\t3\t0\n", (0, 1), None),
        "three fields then two": (b"1\t1\t3\n2\t2\n", (1,), "line 2"),
        "utf-16": ("1\t1\t3\t0\n2\t2\t4\t0\n".encode("utf-16"), (1,), None),
        "latin-1 ids": ("caf\xe9\t1\t3\t0\n".encode("latin-1"), (0, 1), None),
        "gzip": (gzip.compress(b"1\t1\t3\t0\n2\t2\t4\t0\n"), (1,), None),
        "a zip": (b"PK\x03\x04" + bytes(100), (1,), None),
        "html": (b"<!doctype html><html><body>404</body></html>\n", (1,), None),
        "json": (b'[{"user": 1, "item": 2, "rating": 3}]\n', (1,), None),
        "crlf and bom": (b"\xef\xbb\xbf1\t1\t3\t0\r\n2\t2\t4\t0\r\n", (0,), None),
        "spaces only separator": (b"1 1 3 0\n2 2 4 0\n3 3 5 0\n", (0, 1), None),
        "timestamp beyond int64": (b"1\t1\t3\t99999999999999999999999\n", (1,), None),
        "timestamp negative": (b"1\t1\t3\t-5\n2\t2\t4\t0\n", (0, 1), None),
        "all equal ratings": (b"".join(b"%d\t%d\t4\t0\n" % (u, i) for u in range(20)
                                       for i in range(20)), (0,), None),
        "duplicate pairs": (b"1\t1\t3\t0\n1\t1\t5\t0\n2\t2\t4\t0\n", (0, 1), None),
        "bad last line of many": (lambda f: small_data(f, "x").read_bytes() + b"1\t2\tx\t3\n",
                                  (1,), f"line {SMALL_ROWS + 1}"),
    }
    for label, (content, codes, needle) in files.items():
        yield Case(f"ratings: {label}", train("bad"), codes=codes,
                   setup=write("bad", content), needle=needle,
                   check=_no_half_model if codes == (1,) else None)
    yield Case("ratings: a folder", train("sub"), codes=(1, 2),
               setup=lambda f: (f / "sub").mkdir(), absent=("out.npz",))
    yield Case("ratings: /dev/null", ["train", "--data", "/dev/null", "--epochs", "1", "-q"],
               codes=(1,), needle="character device")
    yield Case("ratings: missing file", train("nope"), codes=(1, 2), absent=("out.npz",))
    yield Case("ratings: symlink loop", train("loop"), codes=(1, 2),
               setup=lambda f: os.symlink(f / "loop", f / "loop"), absent=("out.npz",))
    yield Case("ratings: a fifo with nobody writing", train("fifo"), codes=(1, 2),
               setup=lambda f: os.mkfifo(f / "fifo"), absent=("out.npz",))
    yield Case("ratings: wrong --sep", [*train("r.tsv")[:-3], "--sep", ",", "-q"], codes=(1,),
               setup=lambda f: small_data(f), needle="line 1")
    yield Case("ratings: --sep of three characters", [*train("r.tsv"), "--sep", "abc"],
               codes=(1, 2), setup=lambda f: small_data(f), absent=("out.npz",))


def _no_half_model(folder, proc):
    if (folder / "out.npz").exists():
        return "a failed run left out.npz"
    return None


def model_cases():
    """Model files that lie, crash or are not models, for every command that reads one."""
    def swap(key):
        def edit(a, m):
            a[key] = a[key].copy()
            a[key][[1, 2]] = a[key][[2, 1]]
        return edit

    def meta(**change):
        def edit(a, m):
            m.update(change)
        return edit

    def arr(key, fn):
        def edit(a, m):
            if fn is None:
                a.pop(key, None)
            else:
                a[key] = fn(a[key])
        return edit

    edits = {
        "item ids swapped": swap("item_ids"),
        "user ids swapped": swap("user_ids"),
        "user ids as float with inf": arr("user_ids", lambda x: np.r_[x[:-1], np.inf]),
        "item ids bool": arr("item_ids", lambda x: x.astype(bool)),
        "item ids shorter than the table": arr("item_ids", lambda x: x[:-5]),
        "user counts uint wrapped": arr("user_counts", lambda x: x.astype(np.uint64) - 1),
        "seen items unsorted outside": arr("seen_items", lambda x: -x - 1),
        "meta a number": lambda a, m: (a, "42"),
        "meta invalid utf-8": lambda a, m: (a, b"\xff\xfe{"),
        "meta format missing": lambda a, m: m.pop("format"),
        "version a string": meta(version="2"),
        "model a list": meta(model=["mfb"]),
        "params null": meta(params=None),
        "params sigmoid a string": meta(params={"factors": 3, "sigmoid": "yes"}),
        "params init_scale -inf": meta(params={"factors": 3, "init_scale": float("-inf")}),
        "rating_min -Infinity": meta(rating_min=float("-inf")),
        "rating_max a list": meta(rating_max=[5]),
        "epochs 1e30": meta(epochs_trained=10 ** 30),
        "n_train a string": meta(n_train="many"),
        "tables negative rows": lambda a, m: m.update(tables=[["users", -1, 4], ["items", 1, 4]]),
        "theta too long": arr("theta", lambda x: np.r_[x, np.float32(1)]),
        "table with NaN": arr("table.users", lambda x: np.where(x == x.max(), np.nan, x)
                              .astype(np.float32)),
        "table int": arr("table.items", lambda x: x.astype(np.int32)),
        "title arrays missing": arr("title_ids", None),
        "history settings a list": lambda a, m: m.update(history={"settings": [1]}),
        "history seconds strings": lambda a, m: m.update(history={"seconds": ["1s"]}),
        "data source path to a folder": meta(data_source={"data": "/", "split": "random"}),
        "data source sha not hex": meta(data_source={"data": "/x", "sha256": "z" * 64}),
        "data source header a string": meta(data_source={"data": "/x", "header": "yes"}),
        "model renamed to nn": meta(model="nn"),
        "model renamed to timesvdpp": meta(model="timesvdpp"),
        "an object array beside": arr("table.users", lambda x: np.array([x, "x"], dtype=object)),
    }
    commands = {
        "predict": ["predict", "{dir}/bad.npz", "--user", "196", "--item", "242"],
        "recommend": ["recommend", "{dir}/bad.npz", "--user", "196"],
        "similar": ["similar", "{dir}/bad.npz", "--item", "242"],
        "evaluate": ["evaluate", "{dir}/bad.npz", "--data", "{dir}/r.tsv"],
    }
    own_split = ["evaluate", "{dir}/bad.npz"]  # reads data_source
    names = list(commands)
    for n, (label, edit) in enumerate(edits.items()):
        # each lie through one command in turn; the swapped id maps through all of them
        for cmd in (names if "swapped" in label else [names[n % len(names)]]):
            args = own_split if label.startswith("data source") else commands[cmd]
            cmd = "evaluate" if label.startswith("data source") else cmd
            yield Case(f"model: {label} ({cmd})", args, codes=(1,),
                       setup=mutate_model(edit), protect=("bad.npz",))
    not_models = {
        "a ratings file": b"196\t242\t3\t881250949\n",
        "a truncated model": lambda f: good_model(f, "g.npz").read_bytes()[:2000],
        "an empty zip": b"PK\x05\x06" + bytes(18),
        "a pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
        "a bare npy": lambda f: (np.save(f / "a.npy", np.zeros(3)), (f / "a.npy").read_bytes())[1],
    }
    for label, content in not_models.items():
        for cmd, args in commands.items():
            yield Case(f"model: {label} ({cmd})", args, codes=(1,),
                       setup=both(write("bad.npz", content), lambda f: small_data(f)),
                       needle="not an mfcore model file", protect=("bad.npz",),
                       check=_no_pickle_advice)
    yield Case("model: a folder", ["predict", "{dir}/sub", "--user", "1", "--item", "1"],
               codes=(1, 2), setup=lambda f: (f / "sub").mkdir())


def _no_pickle_advice(folder, proc):
    return "mentions allow_pickle" if "allow_pickle" in proc.stderr else None


def argument_cases():
    """Arguments out of range, of the wrong kind, or naming impossible places."""
    base = ["train", "--data", "{dir}/r.tsv", "--epochs", "1", "-q"]
    bad = [
        ["--seed", "-7"], ["--seed", str(2 ** 64 + 1)], ["--seed", "1e3"],
        ["--split-seed", str(-2 ** 70)], ["--factors", "-3"], ["--factors", str(10 ** 12)],
        ["--factors", "2.5"], ["--batch-size", "0"], ["--batch-size", str(10 ** 18)],
        ["--epochs", "-1"], ["--epochs", str(10 ** 12)], ["--lr", "0"], ["--lr", "-inf"],
        ["--lr", "NaN"], ["--lr", "1e400"], ["--l2", "-0.1"], ["--l2", "1e999"],
        ["--train-fraction", "0"], ["--train-fraction", "1.5"], ["--train-fraction", "-nan"],
        ["--init-scale", "0"], ["--init-scale", "-1"], ["--threads", "0"],
        ["--threads", str(10 ** 6)], ["--early-stopping", "-2"], ["--split", "u9"],
        ["--optimizer", "lbfgs"], ["--model", "gpt"], ["--model", "nn", "--hidden", "0"],
        ["--model", "nn", "--hidden", "4,-4"], ["--model", "nn", "--hidden", "a"],
        ["--model", "nn", "--dropout", "1"], ["--model", "nn", "--dropout", "-0.1"],
        ["--model", "nn", "--dropout", "0.1,0.2,0.3"], ["--model", "nn", "--activation", "gelu2"],
        ["--model", "nn", "--input-dropout", "1"], ["--model", "mfb", "--hidden", "4"],
        ["--model", "timesvd", "--bins", str(10 ** 9)], ["--model", "timesvd", "--beta", "1e9"],
        ["--model", "timesvd", "--without", "everything"],
        ["--model", "nn", "--time-features", "--time-inputs", "moon"],
        ["--model", "svdpp", "--implicit", "future"], ["--force"],
    ]
    for extra in bad:
        yield Case(f"args: train {' '.join(extra)[:50]}", [*base, *extra], codes=(2,),
                   setup=lambda f: small_data(f))
    big = {"MFCORE_MEMORY_LIMIT": "64MiB"}
    yield Case("args: factors that do not fit in memory", [*base, "--factors", "500000"],
               codes=(1,), setup=lambda f: small_data(f), env=big, needle="needs")
    yield Case("args: batch that does not fit in memory",
               [*base, "--model", "nn", "--hidden", "1000000", "--batch-size", "100000"],
               codes=(1,), setup=lambda f: small_data(f), env=big, needle="needs")
    yield Case("args: a nonsense MFCORE_MEMORY_LIMIT", base, codes=(1,),
               setup=lambda f: small_data(f), env={"MFCORE_MEMORY_LIMIT": "lots"})
    use = [
        (["predict", "{dir}/m.npz", "--user", "196"], (2,)),
        (["predict", "{dir}/m.npz", "--user", "196", "--item", "242", "--timestamp", "soon"],
         (2,)),
        (["predict", "{dir}/m.npz", "--user", "196", "--item", "242", "--timestamp",
          str(10 ** 30)], (2,)),
        (["predict", "{dir}/m.npz", "--user", "196", "--item", "242", "--timestamp", "-1e30"],
         (2,)),
        (["predict", "{dir}/m.npz", "--user", "\u202e196", "--item", "242"], (1,)),
        (["predict", "{dir}/m.npz", "--user", "196", "--item", "9" * 40], (1,)),
        (["predict", "{dir}/m.npz", "--input", "{dir}/nope.csv"], (2,)),
        (["predict", "{dir}/m.npz", "--input", "{dir}/r.tsv", "--output", "{dir}/no/dir.csv"],
         (1, 2)),
        (["recommend", "{dir}/m.npz", "--user", "196", "-n", "-1"], (2,)),
        (["recommend", "{dir}/m.npz", "--user", "196", "-n", str(10 ** 30)], (0,)),
        (["similar", "{dir}/m.npz", "--item", "242", "-n", "0"], (2,)),
        (["evaluate", "{dir}/m.npz", "--data", "{dir}/r.tsv", "--unknown", "guess"], (2,)),
        (["compare", "--data", "{dir}/r.tsv", "--plot", "{dir}/no/dir/c.png", "--epochs", "1"],
         (1, 2)),
        (["compare", "--data", "{dir}/r.tsv", "--factors", ",", "--epochs", "1"], (2,)),
        (["compare", "--data", "{dir}/r.tsv", "--folds", "u7"], (2,)),
        (["compare", "--data", "{dir}/r.tsv", "--models", "mfb,nope", "--epochs", "1", "-q"],
         (1, 2)),
        (["bench", "--ratings", "0"], (2,)),
        (["bench", "--factors", "1,a"], (2,)),
        (["datasets", "info", "ml-7g"], (2,)),
    ]
    for args, codes in use:
        yield Case(f"args: {' '.join(args[:1] + args[2:])[:60]}", args, codes=codes,
                   setup=both(lambda f: small_data(f), lambda f: good_model(f)),
                   protect=("m.npz", "r.tsv"))


def data_loss_cases():
    """Outputs that would destroy an input or a file that is not a model."""
    train = ["train", "--epochs", "1", "--factors", "2", "-q"]
    yield Case("loss: --save the data file", [*train, "--data", "{dir}/r.tsv", "--save",
                                              "{dir}/r.tsv"],
               codes=(1, 2), setup=lambda f: small_data(f), protect=("r.tsv",))
    yield Case("loss: --save the data file with --force",
               [*train, "--data", "{dir}/r.tsv", "--save", "{dir}/./r.tsv", "--force"],
               codes=(1, 2), setup=lambda f: small_data(f), protect=("r.tsv",))
    yield Case("loss: --save a hard link of the data", [*train, "--data", "{dir}/r.tsv",
                                                       "--save", "{dir}/link"],
               codes=(1, 2), setup=lambda f: (small_data(f), os.link(f / "r.tsv", f / "link")),
               protect=("r.tsv", "link"))
    yield Case("loss: --save a symlink to the data", [*train, "--data", "{dir}/r.tsv",
                                                     "--save", "{dir}/sym.npz", "--force"],
               codes=(1, 2), setup=lambda f: (small_data(f),
                                              os.symlink(f / "r.tsv", f / "sym.npz")),
               protect=("r.tsv",))
    yield Case("loss: --save over notes", [*train, "--data", "{dir}/r.tsv", "--save",
                                           "{dir}/notes.txt"],
               codes=(1, 2), setup=both(lambda f: small_data(f), write("notes.txt", "mine")),
               protect=("notes.txt",), needle="not an mfcore model")
    yield Case("loss: --save over a model replaces it", [*train, "--data", "{dir}/r.tsv",
                                                         "--save", "{dir}/m.npz"],
               codes=(0,), setup=both(lambda f: small_data(f), lambda f: good_model(f)),
               check=_model_changed)
    yield Case("loss: predict --output the input", ["predict", "{dir}/m.npz", "--input",
                                                    "{dir}/pairs.tsv", "--output",
                                                    "{dir}/pairs.tsv"],
               codes=(1, 2), setup=both(lambda f: good_model(f),
                                        write("pairs.tsv", "196\t242\n186\t302\n")),
               protect=("pairs.tsv", "m.npz"))
    yield Case("loss: predict --output the model", ["predict", "{dir}/m.npz", "--input",
                                                    "{dir}/pairs.tsv", "--output",
                                                    "{dir}/m.npz"],
               codes=(1, 2), setup=both(lambda f: good_model(f),
                                        write("pairs.tsv", "196\t242\n186\t302\n")),
               protect=("pairs.tsv", "m.npz"))
    yield Case("loss: compare --plot over the data", ["compare", "--data", "{dir}/r.tsv",
                                                      "--plot", "{dir}/r.tsv", "--epochs", "1",
                                                      "-q"],
               codes=(1, 2), setup=lambda f: small_data(f), protect=("r.tsv",))


def _model_changed(folder, proc):
    digest = hashlib.sha256((folder / "m.npz").read_bytes()).hexdigest()
    good = hashlib.sha256(_GOOD_MODEL["path"].read_bytes()).hexdigest()
    return "the model was not replaced" if digest == good else None


def divergence_cases():
    train = ["train", "--data", "{dir}/r.tsv", "--epochs", "3", "--save", "{dir}/m.npz"]
    for label, extra in {
        "adam lr 1e6": ["--optimizer", "adam", "--lr", "1e6"],
        "adam lr 1e3": ["--optimizer", "adam", "--lr", "1e3"],
        "sparse-adam lr 1e5": ["--optimizer", "sparse-adam", "--lr", "1e5"],
        "sgd batch 1 lr 50": ["--optimizer", "sgd", "--batch-size", "1", "--lr", "50"],
        "sgd batch 32 lr 1e4": ["--optimizer", "sgd", "--batch-size", "32", "--lr", "1e4"],
        "nn lr 1e4": ["--model", "nn", "--lr", "1e4"],
        "mfbs lr 1e6": ["--model", "mfbs", "--lr", "1e6"],
        "svdpp lr 100": ["--model", "svdpp", "--lr", "100", "--factors", "3"],
        "init scale 1e30": ["--init-scale", "1e30"],
        "init scale 1e300 normal": ["--init", "normal", "--init-scale", "1e300"],
    }.items():
        yield Case(f"diverge: {label}", [*train, *extra], codes=(1,),
                   setup=both(lambda f: small_data(f), lambda f: good_model(f)),
                   protect=("m.npz",), needle="diverge" if "init" not in label else "init",
                   check=_one_mention)


def _one_mention(folder, proc):
    if proc.stderr.count("training diverged") > 1 or "kept the weights" in proc.stderr:
        return "the divergence is reported more than once or claims kept weights"
    if proc.stdout.strip():
        return "a failed run printed a result line"
    return None


def cache_cases():
    """The parse cache must follow the content: same size, mtime restored."""
    def setup(folder):
        small_data(folder)

    def check(folder, proc):
        # first run parsed and cached; now change ratings in place keeping size and mtime
        path = folder / "r.tsv"
        st = path.stat()
        text = path.read_text().replace("\t3\t", "\t5\t")
        path.write_text(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        out = subprocess.run([*MFCORE, "train", "--data", str(path), "--epochs", "1", "-q",
                              "--factors", "2", "--save", str(folder / "m2.npz")],
                             capture_output=True, text=True, env=proc.env)
        if out.returncode != 0:
            return f"second run failed: {out.stderr.strip()}"
        m1 = _meta(folder / "m1.npz")
        m2 = _meta(folder / "m2.npz")
        if m1["global_mean"] == m2["global_mean"]:
            return "the edited file gave the same ratings (stale cache)"
        return None
    yield Case("cache: in-place edit with the mtime restored",
               ["train", "--data", "{dir}/r.tsv", "--epochs", "1", "-q", "--factors", "2",
                "--save", "{dir}/m1.npz"], codes=(0,), setup=setup, check=check)


def _meta(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(bytes(z["meta"]).decode())


def signal_cases():
    train = ["train", "--data", "{dir}/r.tsv", "--epochs", "400", "--factors", "20",
             "--save", "{dir}/m.npz", "--no-progress"]
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        yield Case(f"signal: {sig.name} while training", train, codes=(code,),
                   setup=both(lambda f: small_data(f), lambda f: good_model(f)),
                   protect=("m.npz",), signal_after=("Epoch 2/", sig))
        yield Case(f"signal: {sig.name} during start-up", train, codes=(code,),
                   setup=both(lambda f: small_data(f), lambda f: good_model(f)),
                   protect=("m.npz",), signal_after=("", sig))

    def stale(folder):
        small_data(folder)
        (folder / ".m.npz.abc123.tmp").write_bytes(b"partial")
        old = time.time() - 7200
        os.utime(folder / ".m.npz.abc123.tmp", (old, old))
        (folder / "mine.tmp").write_bytes(b"not mfcore's")
    yield Case("signal: a stale temp file after SIGKILL is cleaned by the next save",
               ["train", "--data", "{dir}/r.tsv", "--epochs", "1", "-q", "--save",
                "{dir}/m.npz"], codes=(0,), setup=stale, protect=("mine.tmp",))


# ---- running ----------------------------------------------------------------------------
def _render(args, folder):
    return [a.replace("{dir}", str(folder)) for a in args]


def _leftovers(folder, before):
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in before and (p.name.endswith(".tmp") or ".tmp" in p.name
                                               or p.name.startswith(".")))


def run_case(case, verbose=False):
    folder = Path(tempfile.mkdtemp(prefix="adv-"))
    problems = []
    env = dict(os.environ, MFCORE_CACHE_DIR=str(folder / ".cache-home"), **case.env)
    env.setdefault("MFCORE_DATA_HOME", str(HERE.parent.parent / "shared" / "data"))
    try:
        if case.setup:
            case.setup(folder)
        digests = {p: hashlib.sha256((folder / p).read_bytes()).hexdigest()
                   for p in case.protect}
        before = {p.name for p in folder.iterdir()}
        cmd = [*MFCORE, *_render(case.args, folder)]
        if case.signal_after:
            text, sig = case.signal_after
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
            err = ""
            deadline = time.time() + 300
            if text:
                while text not in err and time.time() < deadline and proc.poll() is None:
                    line = proc.stderr.readline()
                    if not line:
                        break
                    err += line
            else:
                time.sleep(1.5)
            proc.send_signal(sig)
            out, rest = proc.communicate(timeout=300)
            result = subprocess.CompletedProcess(cmd, proc.returncode, out, err + rest)
        else:
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600,
                                    stdin=subprocess.DEVNULL)
        result.env = env
        if result.returncode not in case.codes:
            problems.append(f"exit {result.returncode}, expected {case.codes}")
        if "Traceback" in result.stderr:
            problems.append("traceback")
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith(("error:", "Error:"))]
        if len(errors) > 1:
            problems.append(f"{len(errors)} error lines")
        if result.returncode == 1 and not errors:
            problems.append("exit 1 without an error line")
        if case.needle and result.returncode != 0 and case.needle not in result.stderr:
            problems.append(f"error does not say {case.needle!r}")
        for p, d in digests.items():
            now = folder / p
            if not now.exists() or hashlib.sha256(now.read_bytes()).hexdigest() != d:
                problems.append(f"{p} was changed or removed")
        for p in case.absent:
            if (folder / p).exists():
                problems.append(f"{p} was written")
        left = [n for n in _leftovers(folder, before) if n != ".cache-home"]
        if left:
            problems.append(f"left {left}")
        if case.check:
            complaint = case.check(folder, result)
            if complaint:
                problems.append(complaint)
        if verbose:
            print(f"    $ mfcore {' '.join(_render(case.args, folder))[:150]}\n"
                  f"    -> {result.returncode}: {result.stderr.strip()[-300:]}")
    except Exception as exc:  # noqa: BLE001 - a broken case is a finding too
        problems.append(f"harness: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return problems


def corpus():
    for group in (ratings_cases, model_cases, argument_cases, data_loss_cases,
                  divergence_cases, cache_cases, signal_cases):
        yield from group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=None,
                    help="only cases whose name contains one of these (comma-separated)")
    ap.add_argument("-v", action="store_true", help="print each command and its stderr")
    ap.add_argument("-j", type=int, default=2, help="cases run at once (default 2)")
    args = ap.parse_args()
    words = None if args.k is None else args.k.split(",")
    cases = [c for c in corpus() if words is None or any(w in c.name for w in words)]
    failed = 0
    t0 = time.time()
    good_model(Path(tempfile.mkdtemp(prefix="adv-warm-")))  # made once, before the pool
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(args.j) as pool:
        runs = pool.map(lambda c: run_case(c, args.v), cases)
        for i, (case, problems) in enumerate(zip(cases, runs), 1):
            mark = "ok  " if not problems else "FAIL"
            print(f"{mark} {i:3d}/{len(cases)} {case.name}"
                  + (f": {'; '.join(problems)}" if problems else ""), flush=True)
            failed += bool(problems)
    print(f"\n{len(cases)} cases, {failed} fell short ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
