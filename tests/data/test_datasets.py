"""Loaders: builtin data sets (real ml-100k; ml-1m through a local HTTP server), the parse
cache, data-home resolution, DataFrames, and the progress bar the download uses."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import mfcore.data.datasets as ds
from mfcore.data import (BUILTIN_DATASETS, Ratings, data_home, from_dataframe, load_dataset,
                         load_file, random_split, synthetic_ratings, user_cache_dir,
                         write_ratings_dat)
from mfcore.data.cache import OWNED_MARKER, cache_file_for, is_writable_dir, read_cache
from mfcore.errors import DataError, DownloadError
from mfcore.progress import Progress


def _files(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------------------------------
# real MovieLens 100K
# ---------------------------------------------------------------------------------------
def test_ml100k_from_the_shared_data_home(ml100k):
    assert isinstance(ml100k, Ratings) and ml100k.name == "ml-100k"
    assert len(ml100k) == 100_000 and ml100k.n_users == 943 and ml100k.n_items == 1682
    assert ml100k.users.dtype == np.int32 and ml100k.items.dtype == np.int32
    assert ml100k.ratings.dtype == np.float32 and ml100k.timestamps.dtype == np.int64
    assert ml100k.user_ids.tolist() == list(range(1, 944))
    assert ml100k.rating_scale == (1.0, 5.0)
    d = ml100k.describe()
    assert (d["ratings"], d["users"], d["items"]) == (100_000, 943, 1682)
    assert d["time_min"] == 874724710 and d["time_max"] == 893286638
    # raw ids in file order
    assert ml100k.user_ids[ml100k.users[:3]].tolist() == [196, 186, 22]


def test_shared_data_home_is_only_read(data_home, ml100k_path):
    before = {p: p.stat().st_mtime_ns for p in data_home.rglob("*")}
    r1 = load_dataset("ml-100k", data_home=data_home)
    r2 = load_dataset("ml-100k", data_home=data_home)  # from the cache
    assert len(r1) == len(r2) == 100_000
    np.testing.assert_array_equal(r1.ratings, r2.ratings)
    after = {p: p.stat().st_mtime_ns for p in data_home.rglob("*")}
    assert before == after  # nothing created or touched
    # its parse cache lives in the user cache dir, keyed by the path
    cf = cache_file_for(ml100k_path, "x")
    assert cf is not None and Path(os.environ["MFCORE_CACHE_DIR"]) in cf.parents


@pytest.fixture()
def no_download(monkeypatch):
    """Fail the test if anything gets as far as fetching an archive."""
    def fetch(spec, *args, **kwargs):
        pytest.fail(f"tried to download {spec.url}")
    monkeypatch.setattr(ds, "_fetch", fetch)


@pytest.mark.parametrize("where", ["read-only home", "home under a read-only folder"])
def test_missing_set_in_read_only_home_explains_what_to_fetch(tmp_path, no_download, where):
    """A temp data home made read-only the way mfcore decides it (no write bit: even root
    is refused, see is_writable_dir), so the outcome does not depend on whether the real
    shared folder happens to be writable, and no download is attempted."""
    locked = tmp_path / "locked"
    locked.mkdir()
    home = locked if where == "read-only home" else locked / "not-yet" / "home"
    locked.chmod(0o555)
    try:
        with pytest.raises(DownloadError) as err:
            load_dataset("ml-1m", data_home=home)
        assert _files(locked) == []  # nothing created
    finally:
        locked.chmod(0o755)
    msg = str(err.value)
    assert "read-only or cannot be created" in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert str(home / "ml-1m.zip") in msg and str(home / "ml-1m" / "ratings.dat") in msg
    assert "\n" not in msg


def test_builtin_registry_is_complete_and_pinned():
    assert set(BUILTIN_DATASETS) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m",
                                     "ml-latest-small"}
    for name, spec in BUILTIN_DATASETS.items():
        assert spec.url == f"https://files.grouplens.org/datasets/movielens/{spec.filename}"
        assert spec.sha256 is not None and len(spec.sha256) == 64
        assert spec.size is not None and spec.size > 0
    assert BUILTIN_DATASETS["ml-10m"].folder == "ml-10M100K"
    assert BUILTIN_DATASETS["ml-10m"].filename == "ml-10m.zip"
    assert ds.resolve_name("ML-1M") == "ml-1m" and ds.resolve_name("100k") == "ml-100k"
    assert ds.resolve_name("movielens-20m") == "ml-20m"
    with pytest.raises(DataError, match="unknown data set"):
        ds.resolve_name("netflix")


def test_cli_names_mirror_the_registry():
    from mfcore.cli.options import BUILTIN_NAMES
    assert tuple(BUILTIN_DATASETS) == BUILTIN_NAMES


# ---------------------------------------------------------------------------------------
# data home and cache locations
# ---------------------------------------------------------------------------------------
def test_data_home_and_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MFCORE_CACHE_DIR", raising=False)
    monkeypatch.delenv("MFCORE_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert user_cache_dir() == tmp_path / ".cache" / "mfcore"
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert user_cache_dir() == tmp_path / "xdg" / "mfcore"
    assert data_home() == user_cache_dir()
    monkeypatch.setenv("MFCORE_DATA_HOME", str(tmp_path / "dh"))
    assert data_home() == tmp_path / "dh"
    assert data_home(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "c"))
    assert user_cache_dir() == tmp_path / "c"


def test_writability_uses_permission_bits_even_for_root(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    assert is_writable_dir(d)
    d.chmod(0o555)
    try:
        assert not is_writable_dir(d)
    finally:
        d.chmod(0o755)
    assert not is_writable_dir(tmp_path / "missing")


# ---------------------------------------------------------------------------------------
# the parse cache
# ---------------------------------------------------------------------------------------
@pytest.fixture()
def small_dat(tmp_path):
    r = synthetic_ratings(5000, n_users=200, n_items=150, seed=3)
    p = tmp_path / "src" / "ratings.dat"
    p.parent.mkdir()
    write_ratings_dat(r, p)
    return r, p


def test_cache_hit_rebuild_on_change_and_corrupt_cache(small_dat, monkeypatch, tmp_path):
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "own-cache"))  # count only ours
    r, p = small_dat
    first = load_file(p)
    np.testing.assert_array_equal(first.ratings, r.ratings)
    cached = [f for f in Path(os.environ["MFCORE_CACHE_DIR"]).rglob("ratings.dat-*.mfcache")]
    assert len(cached) == 1
    assert _files(p.parent) == ["ratings.dat"]  # not an mfcore folder: nothing written there

    calls = []
    real = ds.parse_ratings_file
    monkeypatch.setattr(ds, "parse_ratings_file", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_file(p)
    assert calls == []  # served from the cache
    for attr in ("users", "items", "ratings", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(again, attr), getattr(first, attr))

    # another separator option is another cache entry, not a stale hit
    load_file(p, sep="::")
    assert len(calls) == 1

    # the source changes -> rebuilt
    text = p.read_text().splitlines()
    text[0] = "999::1::5::1"
    p.write_text("\n".join(text) + "\n")
    changed = load_file(p)
    assert len(calls) == 2 and changed.user_ids[changed.users[0]] == 999

    # a corrupt cache file is a miss, and gets rewritten
    cf = cached[0]
    cf.write_bytes(b"garbage")
    load_file(p)
    assert len(calls) == 3
    assert "users" in read_cache(cf)[1]
    leftovers = [f for f in cf.parent.iterdir() if f.name.endswith(".tmp")]
    assert leftovers == []


def _rewrite_keeping_size_and_mtime(path, edit):
    """Edit ``path`` in place, then restore its mtime (what ``cp -p``, ``rsync -t`` and
    ``tar`` leave behind): only the content tells the versions apart."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    edit(data)
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_cache_is_keyed_on_content_not_mtime(small_dat, monkeypatch, tmp_path):
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "own-cache"))
    r, p = small_dat
    first = load_file(p)
    assert first.source_sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    line = p.read_bytes().split(b"\n")[0]
    u, i, rating, t = line.split(b"::")
    new_rating = b"5" if rating != b"5" else b"4"

    def edit(data):  # the first rating, same width
        data[len(u) + len(i) + 4:len(u) + len(i) + 4 + len(rating)] = new_rating
    _rewrite_keeping_size_and_mtime(p, edit)
    calls = []
    real = ds.parse_ratings_file
    monkeypatch.setattr(ds, "parse_ratings_file", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_file(p)
    assert calls == [1]  # not served from the stale cache
    assert again.ratings[0] == float(new_rating) and again.ratings[0] != first.ratings[0]
    np.testing.assert_array_equal(again.ratings[1:], first.ratings[1:])
    assert again.source_sha256 == hashlib.sha256(p.read_bytes()).hexdigest() != \
        first.source_sha256
    assert load_file(p).ratings[0] == float(new_rating) and calls == [1]  # cached again
    # subsets (splits) keep the hash of their source
    assert random_split(again, 0.8, seed=0)[1].source_sha256 == again.source_sha256


def test_titles_file_is_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "own-cache"))
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t881250949\n2\t1\t3\t881250949\n")
    (folder / "u.item").write_bytes(b"1|Toy Story (1995)|01-Jan-1995\n")
    first = load_dataset("ml-100k", data_home=tmp_path, download=False)
    assert first.titles == {1: "Toy Story (1995)"}
    _rewrite_keeping_size_and_mtime(folder / "u.item", lambda d: d.__setitem__(slice(2, 5), b"Boy"))
    again = load_dataset("ml-100k", data_home=tmp_path, download=False)
    assert again.titles == {1: "Boy Story (1995)"}


def test_a_file_changing_while_it_is_parsed_is_not_cached(small_dat, monkeypatch, tmp_path):
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "own-cache"))
    r, p = small_dat
    real = ds.parse_ratings_file

    def parse_then_change(*a, **k):
        out = real(*a, **k)
        with open(p, "ab") as fh:
            fh.write(b"1::1::1::1\n")
        return out
    monkeypatch.setattr(ds, "parse_ratings_file", parse_then_change)
    with pytest.raises(DataError, match="changed while it was being read"):
        load_file(p)
    assert list((tmp_path / "own-cache").rglob("*.mfcache")) == []


@pytest.mark.parametrize("cache", [True, False])
def test_a_file_rewritten_in_place_while_it_is_parsed_is_refused(small_dat, monkeypatch,
                                                                 tmp_path, cache):
    """Same size, same modification time: the change is still seen (with or without the
    cache), since a write always moves the file's status-change time."""
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "own-cache"))
    r, p = small_dat
    real = ds.parse_ratings_file

    def parse_then_rewrite(*a, **k):
        out = real(*a, **k)
        _rewrite_keeping_size_and_mtime(p, lambda d: d.__setitem__(0, ord("9")))
        return out
    monkeypatch.setattr(ds, "parse_ratings_file", parse_then_rewrite)
    with pytest.raises(DataError, match="changed while it was being read"):
        load_file(p, cache=cache)
    assert list((tmp_path / "own-cache").rglob("*.mfcache")) == []


def test_no_writable_cache_dir_means_no_cache(small_dat, monkeypatch, tmp_path):
    r, p = small_dat
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        monkeypatch.setenv("MFCORE_CACHE_DIR", str(ro))
        got = load_file(p)
        assert len(got) == len(r)
        assert _files(ro) == []
        assert cache_file_for(p) is None
    finally:
        ro.chmod(0o755)


def test_cache_next_to_source_only_in_an_mfcore_folder(small_dat):
    r, p = small_dat
    (p.parent / OWNED_MARKER).write_text("")
    load_file(p)
    beside = [f.name for f in p.parent.iterdir() if f.name.endswith(".mfcache")]
    assert len(beside) == 1
    # loaded back exactly: plain arrays, no pickle
    arrays = read_cache(p.parent / beside[0])[1]
    assert arrays["users"].dtype == np.int32 and arrays["ratings"].dtype == np.float32


# ---------------------------------------------------------------------------------------
# download, verify, unpack (a local HTTP server stands in for GroupLens)
# ---------------------------------------------------------------------------------------
class _Server:
    def __init__(self):
        self.files = {}   # path -> (bytes, mode)
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.requests.append(self.path)
                if self.path not in owner.files:
                    self.send_error(404)
                    return
                body, mode = owner.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = _Server()
    yield s
    s.close()


def _ml1m_zip(ratings: Ratings, extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        lines = [f"{u}::{i}::{int(r)}::{t}" for u, i, r, t in zip(
            ratings.user_ids[ratings.users], ratings.item_ids[ratings.items], ratings.ratings,
            ratings.timestamps)]
        zf.writestr("ml-1m/", b"")
        zf.writestr("ml-1m/ratings.dat", ("\n".join(lines) + "\n").encode())
        zf.writestr("ml-1m/movies.dat", "1::Toy Story (1995)::Animation\n"
                                        "2::Am\xe9lie (2001)::Comedy\n".encode("latin-1"))
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture()
def fake_ml1m(server, monkeypatch, tmp_path):
    """Serve a small ml-1m-shaped zip and pin its checksum in the registry for this test."""
    ratings = synthetic_ratings(3000, n_users=100, n_items=80, seed=7)
    body = _ml1m_zip(ratings)
    home = tmp_path / "home"
    monkeypatch.setenv("MFCORE_DATA_HOME", str(home))

    def publish(data=body, mode="ok", pinned=None):
        """Serve ``data``; pin the checksums and size of ``pinned`` (default: ``data``)."""
        pinned = data if pinned is None else pinned
        server.files["/ml-1m.zip"] = (data, mode)
        spec = replace(BUILTIN_DATASETS["ml-1m"], url=server.base + "/ml-1m.zip",
                       sha256=hashlib.sha256(pinned).hexdigest(), size=len(pinned),
                       md5=hashlib.md5(pinned).hexdigest())
        monkeypatch.setitem(BUILTIN_DATASETS, "ml-1m", spec)
        return spec

    publish()
    return ratings, body, home, publish


def test_download_verifies_unpacks_and_loads_once(fake_ml1m, server, capsys):
    ratings, body, home, _ = fake_ml1m
    got = load_dataset("ml-1m", progress=True)
    assert got.name == "ml-1m" and len(got) == len(ratings)
    np.testing.assert_array_equal(got.user_ids[got.users], ratings.user_ids[ratings.users])
    np.testing.assert_array_equal(got.item_ids[got.items], ratings.item_ids[ratings.items])
    np.testing.assert_array_equal(got.ratings, ratings.ratings)
    np.testing.assert_array_equal(got.timestamps, ratings.timestamps)
    assert got.titles == {1: "Toy Story (1995)", 2: "Am\xe9lie (2001)"}
    assert "ml-1m.zip" in capsys.readouterr().err  # the forced progress bar
    # unpacked in place, marked as ours, no zip / temp files left
    top = sorted(p.name for p in home.iterdir())
    assert top == ["ml-1m"]
    assert (home / "ml-1m" / "ratings.dat").is_file() and (home / "ml-1m" / OWNED_MARKER).is_file()
    # second load: no request, parse cache next to the source in our own folder
    again = load_dataset("ml-1m")
    assert server.requests == ["/ml-1m.zip"]
    assert again.titles == got.titles
    assert any(p.name.endswith(".mfcache") for p in (home / "ml-1m").iterdir())


def test_corrupted_download_is_rejected_and_leaves_nothing(fake_ml1m):
    ratings, body, home, publish = fake_ml1m
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    publish(data=bytes(bad), pinned=body)
    with pytest.raises(DownloadError, match="corrupt") as err:
        load_dataset("ml-1m", progress=False)
    assert "sha256" in str(err.value) and "put the zip at" in str(err.value)
    assert _files(home) == []


def test_truncated_download_is_rejected_and_leaves_nothing(fake_ml1m):
    ratings, body, home, publish = fake_ml1m
    publish(mode="truncate", pinned=body)
    with pytest.raises(DownloadError) as err:
        load_dataset("ml-1m", progress=False)
    assert "ml-1m.zip" in str(err.value)
    assert _files(home) == []


@pytest.mark.parametrize("member", ["../evil", "ml-1m/../../evil", "/abs/evil"])
def test_zip_escaping_the_target_is_rejected(fake_ml1m, tmp_path, member):
    ratings, _, home, publish = fake_ml1m
    body = _ml1m_zip(ratings, extra=[(member, b"pwned")])
    publish(data=body)
    with pytest.raises(DownloadError, match="refusing"):
        load_dataset("ml-1m", progress=False)
    assert _files(home) == []
    assert not (tmp_path / "evil").exists() and not Path("/abs/evil").exists()


def test_symlink_member_is_rejected(fake_ml1m):
    ratings, _, home, publish = fake_ml1m
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", b"1::2::3::4\n")
        info = zipfile.ZipInfo("ml-1m/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    body = buf.getvalue()
    publish(data=body)
    with pytest.raises(DownloadError, match="symlink"):
        load_dataset("ml-1m", progress=False)
    assert _files(home) == []


def test_unreachable_server_gives_manual_instructions(fake_ml1m, monkeypatch):
    _, _, home, _ = fake_ml1m
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/ml-1m.zip"
    monkeypatch.setitem(BUILTIN_DATASETS, "ml-1m", replace(BUILTIN_DATASETS["ml-1m"], url=url))
    with pytest.raises(DownloadError) as err:
        load_dataset("ml-1m", progress=False)
    msg = str(err.value)
    assert url in msg and str(home / "ml-1m.zip") in msg
    assert str(home / "ml-1m" / "ratings.dat") in msg and "\n" not in msg
    assert [p for p in home.iterdir()] == []


def test_download_false_and_a_zip_placed_by_hand(fake_ml1m, server):
    ratings, body, home, _ = fake_ml1m
    with pytest.raises(DownloadError, match="download=False"):
        load_dataset("ml-1m", download=False)
    home.mkdir(parents=True, exist_ok=True)
    (home / "ml-1m.zip").write_bytes(body)
    got = load_dataset("ml-1m", download=False)
    assert len(got) == len(ratings) and server.requests == []
    assert (home / "ml-1m.zip").is_file()  # the user's own file is left alone
    # a wrong zip placed by hand is reported, not deleted
    other = home / "other"
    other.mkdir()
    (other / "ml-1m.zip").write_bytes(body[:-10])
    with pytest.raises(DownloadError, match="not the expected archive"):
        load_dataset("ml-1m", data_home=other, download=False)
    assert (other / "ml-1m.zip").is_file()


# ---------------------------------------------------------------------------------------
# what a path is, when it is not a ratings file
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,words", [
    ("missing", "no such file"),
    ("folder", "it is a folder, not a file of ratings"),
    ("fifo", "it is a named pipe (FIFO), not a file of ratings; ratings are read from a "
             "regular file: save the stream to a file first"),
    ("devnull", "it is a character device, not a file of ratings"),
])
def test_non_regular_paths_say_what_they_are(tmp_path, kind, words):
    path = {"missing": tmp_path / "gone.csv", "folder": tmp_path, "fifo": tmp_path / "pipe",
            "devnull": Path("/dev/null")}[kind]
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    if kind == "devnull" and not Path("/dev/null").exists():
        pytest.skip("no /dev/null here")
    for load in (load_file, ds.parse_ratings_file):  # neither blocks on the FIFO
        with pytest.raises(DataError) as err:
            load(path)
        assert str(err.value) == f"{path}: {words}"


# ---------------------------------------------------------------------------------------
# DataFrames
# ---------------------------------------------------------------------------------------
def test_from_dataframe_round_trip_and_errors(ml100k):
    pd = pytest.importorskip("pandas")
    df = ml100k.to_dataframe()
    r = from_dataframe(df)
    assert len(r) == len(ml100k) and r.n_users == 943 and r.n_items == 1682
    np.testing.assert_array_equal(r.users, ml100k.users)
    np.testing.assert_array_equal(r.timestamps, ml100k.timestamps)
    s = from_dataframe(pd.DataFrame({"u": ["b", "a", "b"], "m": [10, 20, 20],
                                     "stars": [4, 5, 3.5]}), "u", "m", "stars")
    assert s.user_ids.tolist() == ["a", "b"] and s.users.tolist() == [1, 0, 1]
    assert s.timestamps.tolist() == [0, 0, 0]
    with pytest.raises(DataError, match="no rating column 'stars'"):
        from_dataframe(df, rating_col="stars")
    bad = df.head(5).copy()
    bad.loc[bad.index[3], "rating"] = np.nan
    with pytest.raises(DataError, match="row 3"):
        from_dataframe(bad)
    bad = df.head(5).copy()
    bad.loc[bad.index[2], "user"] = -4
    with pytest.raises(DataError, match=r"negative user id -4 at row 2 \(index 2\)"):
        from_dataframe(bad)
    bad = df.head(5).astype({"item": float})
    bad.loc[bad.index[1], "item"] = 2.5
    bad.index = np.arange(10, 15)
    with pytest.raises(DataError) as err:
        from_dataframe(bad)
    assert str(err.value) == "DataFrame: item id 2.5 at row 1 (index 11) is not an integer"
    bad = df.head(5).copy()
    bad["rating"] = bad["rating"] * 4  # first rows hold 3, 3, 1, 2, 1
    with pytest.raises(DataError, match="out of range"):
        from_dataframe(bad)
    ok = from_dataframe(bad, rating_range=(0, 20))
    assert ok.rating_scale[1] == 12


# ---------------------------------------------------------------------------------------
# progress bar
# ---------------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_disabled_prints_nothing():
    s = io.StringIO()  # not a tty -> disabled by default
    with Progress(100, desc="x", stream=s) as bar:
        for _ in range(100):
            bar.update()
        bar.set_postfix("loss=1")
    assert s.getvalue() == ""
    s2 = _Tty()
    with Progress(10, stream=s2, enabled=False) as bar:
        bar.update(10)
    assert s2.getvalue() == ""


def test_progress_draws_counts_percent_rate_and_throttles(monkeypatch):
    import types

    import mfcore.progress as progress
    clock = types.SimpleNamespace(now=0.0)
    # a clock the test moves (no wall-clock dependence): 1 ms per update, 1 s in all
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    s = _Tty()
    with Progress(1000, desc="epoch 1", unit="batch", stream=s) as bar:
        for i in range(1000):
            clock.now = i / 1000
            bar.update()
        bar.set_postfix("loss=0.8123")
        clock.now = 1.0
    out = s.getvalue()
    assert out.startswith("\r") and out.endswith("\n")
    # throttled to one redraw per 0.1 s: ten in 1 s of updates (the postfix, within 0.1 s
    # of the last, waits), and the final one on close
    assert out.count("\r") == 11
    last = out.rstrip("\n").split("\r")[-1]
    assert "epoch 1" in last and "100%" in last and "1,000/1,000" in last
    assert "1.0k batch/s" in last and "00:01" in last and "loss=0.8123" in last
    s3 = io.StringIO()
    with Progress(2048, unit="B", stream=s3, enabled=True) as bar:
        bar.update(2048)
    assert "2.0 KB/2.0 KB" in s3.getvalue()


def test_random_split_reference_counts_here_too(ml100k):
    train, val = random_split(ml100k, 0.8, seed=0)
    assert (len(train), len(val)) == (80_184, 19_816)


def test_ids_beyond_64_bit_signed_and_reversed_rating_ranges_are_refused(ml100k_path):
    """uint64 ids from 2^63 up (and floats as large) would wrap to negative int64 ids; a
    reversed rating_range would blame the first rating instead of the argument."""
    import pandas as pd

    from mfcore.data import from_dataframe, load_file
    for ids in (np.array([2 ** 64 - 1, 1], np.uint64), np.array([2.0 ** 63, 1.0])):
        with pytest.raises(DataError, match=r"user id .* at row 0 \(index 0\) is too large"):
            from_dataframe(pd.DataFrame({"user": ids, "item": [1, 2], "rating": [4.0, 3.0]}))
    top = from_dataframe(pd.DataFrame({"user": np.array([2 ** 63 - 1, 1], np.uint64),
                                       "item": [1, 2], "rating": [4.0, 3.0]}))
    assert top.user_ids.tolist() == [1, 2 ** 63 - 1]
    for bad in ((5, 1), (3, 3), (1,), ("a", "b")):
        with pytest.raises(DataError, match="rating_range must"):
            load_file(ml100k_path, rating_range=bad, cache=False)
        with pytest.raises(DataError, match="rating_range must"):
            from_dataframe(pd.DataFrame({"user": [1], "item": [1], "rating": [4.0]}),
                           rating_range=bad)


def test_a_data_home_holding_the_wrong_kind_of_thing_is_named_not_downloaded(tmp_path,
                                                                              ml100k_path):
    """Something in the way of the set's folder or ratings file was reported as a failed
    download (or, for UTF-16, as a file cut short): say what is there instead."""
    homes = {k: tmp_path / k for k in ("file", "folder", "device", "utf16")}
    for home in homes.values():
        home.mkdir()
    (homes["file"] / "ml-100k").write_text("not a folder")
    (homes["folder"] / "ml-100k" / "u.data").mkdir(parents=True)
    (homes["device"] / "ml-100k").mkdir()
    os.symlink(os.devnull, homes["device"] / "ml-100k" / "u.data")
    (homes["utf16"] / "ml-100k").mkdir()
    (homes["utf16"] / "ml-100k" / "u.data").write_bytes(
        Path(ml100k_path).read_text().encode("utf-16"))
    for key, said in (("file", "ml-100k is not a folder"), ("folder", "u.data is a folder"),
                      ("device", "u.data is not a regular file"), ("utf16", "UTF-16")):
        with pytest.raises(DataError, match=said):
            load_dataset("ml-100k", data_home=homes[key], download=False, cache=False)
