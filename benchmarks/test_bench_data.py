"""pytest-benchmark figures for the data layer (run explicitly, not part of `tests/`):

    /work/venv/bin/pytest benchmarks/test_bench_data.py --benchmark-only
"""
import pytest

from mfcore.data import load_file, random_split, synthetic_ratings, write_ratings_dat


@pytest.fixture(scope="module")
def ml1m_dat(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MFCORE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    path = tmp_path_factory.mktemp("data") / "ratings.dat"
    write_ratings_dat(synthetic_ratings(seed=0), path)
    load_file(path, cache=False)  # warm the kernels
    yield path
    mp.undo()


def test_parse_cold(benchmark, ml1m_dat):
    r = benchmark(load_file, ml1m_dat, cache=False)
    assert len(r) == 1_000_209


def test_parse_cached(benchmark, ml1m_dat):
    load_file(ml1m_dat)
    r = benchmark(load_file, ml1m_dat)
    assert len(r) == 1_000_209


def test_synthetic_ml1m(benchmark):
    r = benchmark.pedantic(synthetic_ratings, kwargs={"seed": 0}, rounds=3, iterations=1)
    assert len(r) == 1_000_209


def test_random_split(benchmark):
    r = synthetic_ratings(seed=0)
    train, _ = benchmark(random_split, r, 0.8, 0)
    assert 0.79 < len(train) / len(r) < 0.81
