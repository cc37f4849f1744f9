"""The parse cache's file format and its content key (XXH64)."""
import json
import struct

import numpy as np
import pytest

from mfcore.data import cache
from mfcore.data.fasthash import file_xxh64, xxh64

#: reference XXH64 (seed 0) of the first n bytes of (37 i + 11) mod 256, i = 0, 1, ...,
#: from the xxhash library (python-xxhash 3.x); the lengths reach every tail of the
#: algorithm (under and over 32 bytes, 8/4/1-byte remainders)
REFERENCE = {0: "ef46db3751d8e999", 1: "f592c0c7639c4cb6", 3: "22c08528601d4f27",
             4: "fb1e5cf2f1ae4d95", 7: "5613ac510496c04e", 8: "57cb2b7521f3e21a",
             9: "c3f1d09775257b66", 31: "e4a0e629e519a4ae", 32: "cc6b8aaada790b2d",
             33: "35ec49850475a832", 63: "bf9f0ba3cf95b28a", 64: "155ccce4bf32befc",
             65: "da5ee441a595cfb8", 100: "4826e367566ea023", 200: "2f074b6dd9094e34"}
PATTERN = bytes((i * 37 + 11) % 256 for i in range(200))


def _xxh(data, seed=0):
    return f"{int(xxh64(np.frombuffer(data, np.uint8).copy(), np.uint64(seed))):016x}"


@pytest.mark.parametrize("n", sorted(REFERENCE))
def test_xxh64_matches_the_reference(n):
    assert _xxh(PATTERN[:n]) == REFERENCE[n]


def test_xxh64_known_answers():
    assert _xxh(b"Nobody inspects the spammish repetition") == "fbcea83c8a378bf1"
    assert _xxh(PATTERN, seed=12345) == "e683937c82e805b8"


def test_file_hash_reads_the_whole_file(tmp_path):
    p = tmp_path / "f"
    for data in (b"", PATTERN[:1], PATTERN):
        p.write_bytes(data)
        with open(p, "rb") as fh:
            assert file_xxh64(fh) == _xxh(data)


def test_every_byte_moves_the_key(tmp_path):
    p = tmp_path / "r.dat"
    data = bytearray(PATTERN * 50)
    p.write_bytes(bytes(data))
    keys = {cache.source_key([p])}
    for at in (0, 1, 500, len(data) - 9, len(data) - 1):  # stripes, words and the tail
        changed = bytearray(data)
        changed[at] ^= 1
        p.write_bytes(bytes(changed))
        keys.add(cache.source_key([p]))
    assert len(keys) == 6


def test_source_key_names_each_source_and_the_options(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(PATTERN)
    b.write_bytes(b"titles")
    key = cache.source_key([a, None, b], sep="\t")
    files = json.loads(key)["files"]
    assert [f[1:] for f in files] == [[200, _xxh(PATTERN)], [6, _xxh(b"titles")]]
    assert cache.source_key([a, b], sep=",") != key
    missing = cache.source_key([tmp_path / "nope"])
    assert json.loads(missing)["files"][0][1:] == [None, None]


def test_the_sha256_of_a_source_is_computed_when_asked_and_only_for_that_content(tmp_path):
    import hashlib
    from mfcore.data.ratings import SourceDigest
    p = tmp_path / "r.dat"
    p.write_bytes(PATTERN)
    digest = SourceDigest(p, cache.file_states([p]))
    assert digest.sha256() == hashlib.sha256(PATTERN).hexdigest()
    p.write_bytes(PATTERN[::-1])  # known already: kept
    assert digest.sha256() == hashlib.sha256(PATTERN).hexdigest()
    later = SourceDigest(p, cache.file_states([p]))
    p.write_bytes(PATTERN)  # changed before anyone asked: unknown, not the new file's hash
    assert later.sha256() is None
    assert SourceDigest(tmp_path / "gone", cache.file_states([tmp_path / "gone"])).sha256() is None


ARRAYS = {"users": np.arange(10, dtype=np.int32), "ratings": np.linspace(1, 5, 10, dtype=np.float32),
          "timestamps": np.arange(10, dtype=np.int64) * 86400, "empty": np.zeros(0, np.int64),
          "blob": np.frombuffer(b"Toy Story", np.uint8)}


def test_a_cache_file_gives_back_its_arrays_and_meta(tmp_path):
    p = tmp_path / "c.mfcache"
    assert cache.save_cache(p, "k1", ARRAYS, {"sha256": "ab" * 32})
    arrays, meta = cache.load_cache(p, "k1")
    assert meta == {"sha256": "ab" * 32}
    assert list(arrays) == list(ARRAYS)
    for name, a in ARRAYS.items():
        assert arrays[name].dtype == a.dtype
        np.testing.assert_array_equal(arrays[name], a)
        assert arrays[name].flags.writeable and arrays[name].flags.owndata
    assert cache.load_cache(p, "k2") is None  # another key: a miss
    assert cache.read_cache(p)[0] == "k1"


def _header(p):
    raw = p.read_bytes()
    magic, version, length = struct.unpack("<8sII", raw[:16])
    return raw, json.loads(raw[16:16 + length])


def _rewrite(p, raw, header, version=None):
    body = json.dumps(header).encode()
    old_length = struct.unpack("<8sII", raw[:16])[2]
    start = -(-(16 + old_length) // 64) * 64
    new_start = -(-(16 + len(body)) // 64) * 64
    out = (raw[:8] + struct.pack("<II", version or cache.CACHE_VERSION, len(body)) + body
           + b"\0" * (new_start - 16 - len(body)) + raw[start:])
    p.write_bytes(out)


def _damage(kind, p):
    raw, header = _header(p)
    arrays = header["arrays"]
    if kind == "truncated":
        p.write_bytes(raw[:-5])
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "magic":
        p.write_bytes(b"\x93NUMPY" + raw[6:])
    elif kind == "version":
        _rewrite(p, raw, header, version=2)
    elif kind == "header-not-json":
        p.write_bytes(raw[:16] + b"{" * (len(raw) - 16))
    elif kind == "header-length":
        p.write_bytes(raw[:12] + struct.pack("<I", len(raw) * 4) + raw[16:])
    elif kind == "object-dtype":
        arrays[0][1] = "|O"
        _rewrite(p, raw, header)
    elif kind == "big-endian":
        arrays[0][1] = ">i4"
        _rewrite(p, raw, header)
    elif kind == "negative-shape":
        arrays[0][2] = [-1]
        _rewrite(p, raw, header)
    elif kind == "past-the-end":
        arrays[-1][3] = len(raw)
        _rewrite(p, raw, header)
    elif kind == "unaligned":
        arrays[1][3] += 4
        _rewrite(p, raw, header)
    elif kind == "duplicate":
        arrays[1][0] = arrays[0][0]
        _rewrite(p, raw, header)
    elif kind == "not-a-list":
        header["arrays"] = {"users": 1}
        _rewrite(p, raw, header)


@pytest.mark.parametrize("kind", ["truncated", "empty", "magic", "version", "header-not-json",
                                  "header-length", "object-dtype", "big-endian",
                                  "negative-shape", "past-the-end", "unaligned", "duplicate",
                                  "not-a-list"])
def test_a_damaged_cache_file_is_a_miss(tmp_path, kind):
    p = tmp_path / "c.mfcache"
    cache.save_cache(p, "k", ARRAYS, {})
    assert cache.load_cache(p, "k") is not None
    _damage(kind, p)
    assert cache.load_cache(p, "k") is None
    assert cache.read_cache(p) is None


@pytest.mark.parametrize("kind", ["truncated", "object-dtype", "past-the-end"])
def test_a_damaged_cache_is_parsed_again_and_rewritten(tmp_path, monkeypatch, kind):
    from mfcore.data import load_file
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "r.csv"
    src.write_text("user,item,rating\n1,1,5\n2,1,3\n2,7,4\n")
    first = load_file(src)
    (cf,) = (tmp_path / "cache").rglob("*.mfcache")
    _damage(kind, cf)
    again = load_file(src)
    np.testing.assert_array_equal(again.ratings, first.ratings)
    assert again.source_sha256 == first.source_sha256
    assert cache.read_cache(cf) is not None  # rewritten whole
