"""The delimited-ratings parser: real files, hand-written bad files, and property tests
(generated good files round-trip; generated bad files always raise DataError at the
right line, never another exception)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mfcore.data import load_file
from mfcore.data.parsers import (normalize_sep, parse_ratings_bytes, parse_ratings_file,
                                 read_titles)
from mfcore.errors import DataError

SEPS = ["\t", "::", ",", ";", "|"]


# ---------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------
def test_u_data_parses_exactly(ml100k_path):
    raw = parse_ratings_file(ml100k_path)
    assert raw["sep"] == "\t" and raw["header"] is False and raw["has_time"]
    assert len(raw["users"]) == 100_000
    # first rows of the official file, in file order
    assert raw["users"][:3].tolist() == [196, 186, 22]
    assert raw["items"][:3].tolist() == [242, 302, 377]
    assert raw["ratings"][:3].tolist() == [3.0, 3.0, 1.0]
    assert raw["timestamps"][:3].tolist() == [881250949, 891717742, 878887116]
    assert raw["ratings"].dtype == np.float32 and raw["timestamps"].dtype == np.int64
    assert len(np.unique(raw["users"])) == 943 and len(np.unique(raw["items"])) == 1682


def test_u_data_agrees_with_pandas(ml100k_path):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(ml100k_path, sep="\t", header=None, names=["u", "i", "r", "t"])
    raw = parse_ratings_file(ml100k_path, sep="tab")
    np.testing.assert_array_equal(raw["users"], df["u"].to_numpy())
    np.testing.assert_array_equal(raw["items"], df["i"].to_numpy())
    np.testing.assert_array_equal(raw["ratings"], df["r"].to_numpy(np.float32))
    np.testing.assert_array_equal(raw["timestamps"], df["t"].to_numpy())


def test_tab_file_read_with_double_colon_names_the_separator(ml100k_path):
    with pytest.raises(DataError) as err:
        parse_ratings_file(ml100k_path, sep="::")
    e = err.value
    assert e.line == 1 and e.path == str(ml100k_path)
    assert "wrong separator" in str(e) and "tab" in str(e)
    assert "\n" not in str(e)


# ---------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------
def test_movielens_csv_with_header_half_stars_and_crlf():
    text = b"userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n\r\n1,1029,3.0,1260759179\r\n"
    raw = parse_ratings_bytes(text)
    assert raw["header"] and raw["sep"] == ","
    assert raw["users"].tolist() == [1, 1] and raw["items"].tolist() == [31, 1029]
    assert raw["ratings"].tolist() == [2.5, 3.0]
    assert raw["timestamps"].tolist() == [1260759144, 1260759179]


def test_columns_by_name_and_position(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("stars,item_id,when,user_id\n4,10,100,7\n5,11,200,8\n")
    r = load_file(p, columns=("user_id", "item_id", "stars", "when"), cache=False)
    assert r.user_ids[r.users].tolist() == [7, 8]
    assert r.item_ids[r.items].tolist() == [10, 11]
    assert r.ratings.tolist() == [4.0, 5.0] and r.timestamps.tolist() == [100, 200]
    # recognised header names need no columns= at all
    r2 = load_file(p, cache=False)
    assert r2.user_ids[r2.users].tolist() == [7, 8] and r2.timestamps.tolist() == [100, 200]
    q = tmp_path / "r.tsv"
    q.write_text("10\t7\t4\n11\t8\t5\n")
    r3 = load_file(q, columns=(1, 0, 2), cache=False)
    assert r3.user_ids[r3.users].tolist() == [7, 8] and r3.timestamps.tolist() == [0, 0]
    with pytest.raises(DataError, match="no header"):
        load_file(q, columns=("user", "item", "rating"), cache=False)
    with pytest.raises(DataError, match="does not exist"):
        load_file(q, columns=(0, 1, 5), cache=False)


def test_three_columns_without_timestamp_and_spaces_around_fields():
    raw = parse_ratings_bytes(b" 1 ; 2 ; 3.5 \n4;5;1\n", sep=";")
    assert raw["users"].tolist() == [1, 4] and raw["ratings"].tolist() == [3.5, 1.0]
    assert not raw["has_time"] and raw["timestamps"].tolist() == [0, 0]


@pytest.mark.parametrize("spelling,literal", [("tab", "\t"), ("\\t", "\t"), ("\t", "\t"),
                                              ("::", "::"), (",", ","), ("comma", ","),
                                              ("pipe", "|"), ("space", " ")])
def test_separator_spellings(spelling, literal):
    assert normalize_sep(spelling) == literal


def test_titles_formats(tmp_path):
    (tmp_path / "u.item").write_bytes("1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n"
                                      "2|Caf\xe9 (1994)|...\n".encode("latin-1"))
    (tmp_path / "movies.dat").write_bytes("1::Toy Story (1995)::Animation\n".encode("latin-1"))
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,"Toy Story (1995)",A\n'
                                         '2,"Fish, Wanda (1988)",Comedy\n', encoding="utf-8")
    assert read_titles(tmp_path / "u.item", "u.item", "latin-1") == {
        1: "Toy Story (1995)", 2: "Caf\xe9 (1994)"}
    assert read_titles(tmp_path / "movies.dat", "movies.dat", "latin-1") == {1: "Toy Story (1995)"}
    assert read_titles(tmp_path / "movies.csv", "movies.csv")[2] == "Fish, Wanda (1988)"
    assert read_titles(tmp_path / "missing.csv", "movies.csv") == {}


# ---------------------------------------------------------------------------------------
# bad input, by hand
# ---------------------------------------------------------------------------------------
BAD = [
    (b"", None, None, "empty"),
    (b"\n\r\n  \n", None, None, "empty"),
    (b"userId,movieId,rating\n", 1, None, "header but no ratings"),
    (b"1::2::3::4\n1::2::x::4\n", 2, 3, "not a number"),
    (b"1::2::3::4\n1::b::3::4\n", 2, 2, "not an integer"),
    (b"1::2::3::4\n1::2::3\n1::2::3::4\n", 2, None, "wrong number of columns"),
    (b"1::2::3::4\n1::2::3::4::5\n1::2::3::4\n", 2, None, "wrong number of columns"),
    (b"1,2,3\n1,2,nan\n", 2, 3, "not a finite number"),
    (b"1,2,3\n1,2,-inf\n", 2, 3, "not a finite number"),
    (b"1,2,3\n1,2,11\n", 2, 3, "out of range"),
    (b"1,2,3\n1,2,-0.5\n", 2, 3, "out of range"),
    (b"1,2,3\n-1,2,3\n", 2, 1, "negative user id"),
    (b"1,2,3\n1,-2,3\n", 2, 2, "negative item id"),
    (b"1,2,3\n1,,3\n", 2, 2, "missing item"),
    (b"1,2,3\n1,2,\n", 2, 3, "missing rating"),
    (b"1,2,3\n1.5,2,3\n", 2, 1, "not an integer"),
    (b"1,2,3,4\n1,2,3,4x\n", 2, 4, "not an integer"),
    (b"1,2,3\n123456789012345678901,2,3\n", 2, 1, "too large"),
    (b"1,2,3,4\n1,2,3,-9223372036854775808\n", 2, 4, "'-9223372036854775808' is too far below zero"),
    # not ratings text at all: say what it is, not "empty" or a bogus column error
    (b"x" * 70_000 + b"\n1,2,3\n", 1, None, "over 65,536 bytes without a line break"),
    (b"1,2," + b"3" * 70_000 + b"\n1,2,3\n", 1, None, "over 65,536 bytes without a line break"),
    (b"\n\n" + b"7" * 70_000, 3, None, "over 65,536 bytes without a line break"),
    (b"\n" * 70_000, None, None, "only blank lines"),
    (b"1,2,3\r4,5,3\r6,7,1\r", None, None, "bare carriage return"),
    (b"1,2,3\n4,\x005,3\n", 2, None, "binary data (a NUL byte)"),
    (b"\x1f\x8b\x08\x00\x00\x00", None, None, "gzip-compressed"),
    (b"PK\x03\x04\x14\x00", None, None, "a zip archive"),
    ("1,2,3\n".encode("utf-16"), None, None, "UTF-16"),
    ("1,2,3\n".encode("utf-32-le").join([b"\xff\xfe\x00\x00", b""]), None, None, "UTF-32"),
    ("1,2,3\n".encode("utf-32-be").join([b"\x00\x00\xfe\xff", b""]), None, None, "UTF-32"),
]


@pytest.mark.parametrize("data,line,column,words", BAD)
def test_bad_input_raises_data_error_naming_line_and_column(tmp_path, data, line, column, words):
    p = tmp_path / "bad.txt"
    p.write_bytes(data)
    with pytest.raises(DataError) as err:
        parse_ratings_file(p)
    e = err.value
    assert words in str(e)
    assert e.path == str(p) and str(p) in str(e)
    assert e.line == line and e.column == column
    assert "\n" not in str(e)


def test_leading_blank_lines_and_a_utf8_bom_are_fine():
    raw = parse_ratings_bytes(b"\n" * 70_000 + b"1,2,3\n4,5,3\n")
    assert raw["users"].tolist() == [1, 4]
    raw = parse_ratings_bytes(b"\xef\xbb\xbf1,2,3\n4,5,3\n")
    assert raw["users"].tolist() == [1, 4]
    raw = parse_ratings_bytes(b"\xef\xbb\xbfuser,item,rating\n4,5,3\n")
    assert raw["header"] and raw["users"].tolist() == [4]
    with pytest.raises(DataError) as err:  # still located right after a BOM
        parse_ratings_bytes(b"\xef\xbb\xbf1,2,3\n4,x,3\n")
    assert (err.value.line, err.value.column) == (2, 2)


def test_a_long_line_after_good_ones_is_reported_at_its_line():
    with pytest.raises(DataError) as err:
        parse_ratings_bytes(b"1,2,3\n4,5,3\n" + b"9" * 70_000 + b"\n")
    assert err.value.line == 3


def test_rating_range_is_a_parameter():
    data = b"1,2,50\n"
    with pytest.raises(DataError, match="out of range"):
        parse_ratings_bytes(data)
    assert parse_ratings_bytes(data, rating_range=(0, 100))["ratings"].tolist() == [50.0]
    assert parse_ratings_bytes(b"1,2,-3\n", rating_range=None)["ratings"].tolist() == [-3.0]


def test_bad_file_leaves_no_cache(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("MFCORE_CACHE_DIR", str(cache_dir))
    p = tmp_path / "bad.dat"
    p.write_text("1::2::3::4\n1::2::oops::4\n")
    with pytest.raises(DataError):
        load_file(p)
    leftovers = [f for f in cache_dir.rglob("*") if f.is_file()] if cache_dir.exists() else []
    assert leftovers == []
    assert sorted(f.name for f in tmp_path.iterdir() if f.is_file()) == ["bad.dat"]


# ---------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------
@st.composite
def rating_rows(draw, min_rows=1):
    n = draw(st.integers(min_rows, 25))
    users = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
    # ratings with up to 2 decimals in [0, 10], written in several styles
    cents = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
    return users, items, cents, times


def _fmt_rating(c, style):
    if style == 0:
        return f"{c / 100:g}" if c % 100 else str(c // 100)
    if style == 1:
        return f"{c / 100:.2f}"
    return f"{c}e-2"


def _render(users, items, cents, times, sep, eol, with_time, header, style, final_eol):
    lines = []
    if header:
        lines.append(sep.join(["userId", "movieId", "rating", "timestamp"][:4 if with_time else 3]))
    for u, i, c, t in zip(users, items, cents, times):
        row = [str(u), str(i), _fmt_rating(c, style)]
        if with_time:
            row.append(str(t))
        lines.append(sep.join(row))
    return (eol.join(lines) + (eol if final_eol else "")).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rating_rows(), sep=st.sampled_from(SEPS), eol=st.sampled_from(["\n", "\r\n"]),
       with_time=st.booleans(), header=st.booleans(), style=st.integers(0, 2),
       final_eol=st.booleans(), give_sep=st.booleans())
def test_generated_good_files_round_trip(rows, sep, eol, with_time, header, style, final_eol,
                                         give_sep):
    users, items, cents, times = rows
    data = _render(users, items, cents, times, sep, eol, with_time, header, style, final_eol)
    raw = parse_ratings_bytes(data, sep=sep if give_sep else None)
    assert raw["sep"] == sep and raw["header"] == header
    np.testing.assert_array_equal(raw["users"], np.array(users, dtype=np.int64))
    np.testing.assert_array_equal(raw["items"], np.array(items, dtype=np.int64))
    expected = np.array([float(_fmt_rating(c, style)) for c in cents]).astype(np.float32)
    np.testing.assert_array_equal(raw["ratings"], expected)
    np.testing.assert_array_equal(raw["timestamps"],
                                  np.array(times if with_time else [0] * len(users), np.int64))


CORRUPTIONS = ["user_text", "item_float", "rating_text", "rating_nan", "rating_inf",
               "rating_big", "rating_negative", "user_negative", "item_missing",
               "rating_missing", "drop_field", "extra_field", "time_text"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rating_rows(min_rows=3), sep=st.sampled_from(SEPS), header=st.booleans(),
       kind=st.sampled_from(CORRUPTIONS), where=st.integers(0, 10**6),
       give_sep=st.booleans(), junk=st.sampled_from(["abc", "1x", "x1", "--", "0x1F"]))
def test_generated_bad_files_raise_at_the_right_line(rows, sep, header, kind, where, give_sep,
                                                     junk):
    users, items, cents, times = rows
    k = where % len(users)
    lines = [[str(u), str(i), _fmt_rating(c, 0), str(t)]
             for u, i, c, t in zip(users, items, cents, times)]
    bad = lines[k]
    expected_col = {"user_text": 1, "item_float": 2, "rating_text": 3, "rating_nan": 3,
                    "rating_inf": 3, "rating_big": 3, "rating_negative": 3, "user_negative": 1,
                    "item_missing": 2, "rating_missing": 3, "time_text": 4}.get(kind)
    if kind == "user_text":
        bad[0] = junk
    elif kind == "item_float":
        bad[1] = bad[1] + ".5"
    elif kind == "rating_text":
        bad[2] = junk
    elif kind == "rating_nan":
        bad[2] = "NaN"
    elif kind == "rating_inf":
        bad[2] = "inf"
    elif kind == "rating_big":
        bad[2] = "10.01"
    elif kind == "rating_negative":
        bad[2] = "-1"
    elif kind == "user_negative":
        bad[0] = "-" + str(int(bad[0]) + 1)
    elif kind == "item_missing":
        bad[1] = ""
    elif kind == "rating_missing":
        bad[2] = ""
    elif kind == "drop_field":
        del bad[3]
    elif kind == "extra_field":
        bad.append("7")
    elif kind == "time_text":
        bad[3] = junk
    text = [sep.join(ln) for ln in lines]
    if header:
        text.insert(0, sep.join(["userId", "movieId", "rating", "timestamp"]))
    data = ("\n".join(text) + "\n").encode()
    with pytest.raises(DataError) as err:
        parse_ratings_bytes(data, sep=sep if give_sep else None, header=header,
                            source="gen.dat")
    e = err.value
    assert e.path == "gen.dat"
    assert e.line == k + 1 + int(header), str(e)
    if expected_col is not None:
        assert e.column == expected_col, str(e)
    assert "\n" not in str(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=200),
                      st.text(alphabet="0123456789.-+eEaniINF\t:,;| \r\n", max_size=200)
                      .map(lambda s: s.encode())))
def test_arbitrary_bytes_give_ratings_or_data_error(data):
    try:
        raw = parse_ratings_bytes(data)
    except DataError as e:
        assert "\n" not in str(e)
        return
    n = len(raw["users"])
    assert n > 0 and len(raw["items"]) == len(raw["ratings"]) == len(raw["timestamps"]) == n
    assert np.all(np.isfinite(raw["ratings"])) and np.all(raw["users"] >= 0)
    assume(True)
