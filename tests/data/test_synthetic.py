"""The synthetic MovieLens-1M-shaped generator and its ml-1m style writer."""
from __future__ import annotations

import numpy as np
import pytest

from mfcore.data import load_file, synthetic_ratings, write_ratings_dat
from mfcore.data.parsers import parse_ratings_file
from mfcore.errors import DataError


@pytest.fixture(scope="module")
def ml1m_like():
    return synthetic_ratings(seed=0)


def test_default_shape_is_ml1m(ml1m_like):
    r = ml1m_like
    assert len(r) == 1_000_209 and r.n_users == 6040 and r.n_items == 3706
    counts = np.bincount(r.users, minlength=r.n_users)
    assert counts.min() >= 20 and counts.sum() == len(r) and counts.max() <= r.n_items
    assert np.median(counts) < counts.mean()  # heavy tail, like ml-1m (median 96, mean 166)
    assert set(np.unique(r.ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.45 <= r.ratings.mean() <= 3.75
    pop = np.sort(np.bincount(r.items, minlength=r.n_items))[::-1]
    assert pop[0] > 10 * np.median(pop)  # skewed popularity
    key = r.users.astype(np.int64) * r.n_items + r.items
    assert len(np.unique(key)) == len(r)  # no repeated (user, item)
    assert r.timestamps.min() >= 956_703_932 and r.timestamps.max() <= 1_046_454_590
    assert r.users.dtype == np.int32 and r.ratings.dtype == np.float32


def test_deterministic_for_a_seed_and_chunk_independent_shape():
    a = synthetic_ratings(20_000, n_users=300, n_items=200, seed=5, chunk=3000)
    b = synthetic_ratings(20_000, n_users=300, n_items=200, seed=5, chunk=3000)
    c = synthetic_ratings(20_000, n_users=300, n_items=200, seed=6, chunk=3000)
    for attr in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(a.items, c.items)
    d = synthetic_ratings(20_000, n_users=300, n_items=200, seed=5, chunk=10**9)
    np.testing.assert_array_equal(np.bincount(d.users), np.bincount(a.users))


def test_scaled_shape_keeps_density():
    r = synthetic_ratings(250_000, n_users=None, n_items=None, seed=1)
    assert (r.n_users, r.n_items) == (3020, 1853)
    dense = 1_000_209 / (6040 * 3706)
    assert abs(len(r) / (r.n_users * r.n_items) - dense) / dense < 0.01


def test_dense_and_impossible_shapes():
    r = synthetic_ratings(400, n_users=20, n_items=20, seed=0)  # a full matrix
    key = r.users.astype(np.int64) * 20 + r.items
    assert len(np.unique(key)) == 400
    with pytest.raises(DataError, match="cannot fit"):
        synthetic_ratings(401, n_users=20, n_items=20)


def test_written_dat_file_parses_back(tmp_path):
    r = synthetic_ratings(30_000, n_users=400, n_items=300, seed=2)
    p = write_ratings_dat(r, tmp_path / "ratings.dat")
    first = p.read_text().splitlines()[0].split("::")
    assert len(first) == 4 and int(first[0]) == r.user_ids[r.users[0]]
    raw = parse_ratings_file(p)
    assert raw["sep"] == "::"
    np.testing.assert_array_equal(raw["users"], r.user_ids[r.users])
    np.testing.assert_array_equal(raw["items"], r.item_ids[r.items])
    np.testing.assert_array_equal(raw["ratings"], r.ratings)
    np.testing.assert_array_equal(raw["timestamps"], r.timestamps)
    back = load_file(p, cache=False)
    assert len(back) == len(r)


def test_writer_handles_half_stars_and_other_separators(tmp_path):
    from mfcore.data import Ratings
    r = Ratings.from_arrays([3, 1], [7, 9], [4.5, 0.25], [10, 20])
    p = write_ratings_dat(r, tmp_path / "r.tsv", sep="\t")
    assert p.read_text() == "3\t7\t4.5\t10\n1\t9\t0.25\t20\n"
    q = write_ratings_dat(r.subset([0]), tmp_path / "r.dat", timestamps=False)
    assert q.read_text() == "3::7::4.5\n"


@pytest.mark.parametrize("kw,words", [(dict(noise=float("nan")), "noise must be a finite"),
                                      (dict(noise=-0.5), "noise must be a finite"),
                                      (dict(factors=0), "factors must be a whole number")])
def test_generator_settings_that_make_no_data_are_refused(kw, words):
    """noise=NaN gave 100 NaN ratings, and a fit on them blamed init_scale."""
    with pytest.raises(DataError, match=words):
        synthetic_ratings(100, **kw)
