"""Shared fixtures: the real MovieLens data in the shared (read-only) data home.

* The data home is ``$MFCORE_DATA_HOME`` when set, else ``<repo>/../shared/data``.
* For the whole session ``MFCORE_DATA_HOME`` points there and ``MFCORE_CACHE_DIR`` at a
  temporary folder, so no test writes into the shared data home or the user's cache.
* :func:`require_data` skips a test when a data file is missing, but fails it when the
  environment variable ``CI`` is ``true``/``1`` (CI must have the data).
* No test reaches the network: for the whole session, resolving or connecting to any
  host but the loopback fails the test (downloads are tested against a local HTTP
  server on 127.0.0.1). Subprocesses are not covered: they must not download either.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_home() -> Path:
    """Where the real data lives: $MFCORE_DATA_HOME, else <repo>/../shared/data."""
    env = os.environ.get("MFCORE_DATA_HOME")
    return Path(env) if env else (REPO.parent / "shared" / "data")


SHARED_DATA_HOME = shared_data_home()
SHARED_DIR = SHARED_DATA_HOME.parent if SHARED_DATA_HOME.name == "data" else REPO.parent / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_data(path, optional: bool = False) -> Path:
    """Return ``path`` if it exists; else skip (or fail when CI=true/1, unless ``optional``:
    data no CI machine can have, like MovieLens 1M)."""
    path = Path(path)
    if not path.exists():
        msg = f"data not available: {path} (set MFCORE_DATA_HOME)"
        if in_ci() and not optional:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Point the data home at the shared data and the user cache at a temp folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MFCORE_DATA_HOME", str(SHARED_DATA_HOME))
        mp.setenv("MFCORE_CACHE_DIR", str(tmp_path_factory.mktemp("mfcore-cache")))
        yield


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost", b"localhost"):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _no_network():
    """Fail any test that resolves or connects to a host other than the loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            pytest.fail(f"a test tried to reach the network: getaddrinfo({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            pytest.fail(f"a test tried to reach the network: connect({address!r})")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        yield


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (data/, reference/), read-only."""
    return require_data(SHARED_DIR)


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The shared data home (read-only)."""
    return require_data(SHARED_DATA_HOME)


@pytest.fixture(scope="session")
def ml100k_path() -> Path:
    return require_data(SHARED_DATA_HOME / "ml-100k" / "u.data")


@pytest.fixture(scope="session")
def ml100k(ml100k_path, _isolated_cache):
    """MovieLens 100K ``u.data`` as Ratings (100,000 rows, file order)."""
    from mfcore.data import load_dataset
    return load_dataset("ml-100k", data_home=SHARED_DATA_HOME, download=False)


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """The reference split: ``random_split(u.data, 0.8, seed=0)`` -> 80,184 / 19,816 rows."""
    from mfcore.data import random_split
    return random_split(ml100k, train_fraction=0.8, seed=0)


@pytest.fixture(scope="session")
def ml1m(_isolated_cache):
    """MovieLens 1M when present in the data home (never on the CI machines: skipped)."""
    require_data(SHARED_DATA_HOME / "ml-1m" / "ratings.dat", optional=True)
    from mfcore.data import load_dataset
    return load_dataset("ml-1m", data_home=SHARED_DATA_HOME, download=False)


@pytest.fixture(scope="session")
def ml1m_split(ml1m):
    from mfcore.data import random_split
    return random_split(ml1m, train_fraction=0.8, seed=0)


#: seeds averaged by the parity tests (see tests/parity.py)
PARITY_SEEDS = 8


@pytest.fixture(scope="session")
def zoo_json(data_home):
    """``mfcore compare --json`` of every notebook model at k = 10 and 50 on ml-100k's
    reference split, trained as the Keras reference was (Adam 1e-3, batch 64, 6 epochs,
    one shuffled order replayed), averaged over PARITY_SEEDS seeds. The zoo is trained
    once per session: tests/test_compare.py checks this command line run and the parity
    tests read their curves from it (:func:`zoo_means`)."""
    import json

    from click.testing import CliRunner

    from mfcore.cli import main
    res = CliRunner().invoke(main, ["compare", "--dataset", "ml-100k", "--epochs", "6",
                                    "--shuffle", "once", "--repeats", str(PARITY_SEEDS),
                                    "--json", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="session")
def zoo_means(zoo_json):
    """The zoo's results keyed like the Keras reference (``"mfb/k=10"``), each with the
    fields of a CompareResult (``params``, ``history``, ``runs`` ...)."""
    from types import SimpleNamespace
    return {f"{r['model'].replace('-', '_')}/k={r['factors']}": SimpleNamespace(**r)
            for r in zoo_json["results"]}
