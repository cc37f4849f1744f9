"""Bad input found by a fresh corpus (stop 21): each gets one error line that says what
and where, the right exit code, no traceback, and nothing silently accepted."""
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from cli_checks import one_error_line

from mfcore.cli import main
from mfcore.data import load_dataset, make_split
from mfcore.errors import DataError


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def one_line(res, code, *needles):
    return one_error_line(res, *needles, code=code)


@pytest.fixture(scope="module")
def small(tmp_path_factory, ml100k_path):
    """The first 5,000 ratings of u.data and an mfb model trained on them by the CLI."""
    folder = tmp_path_factory.mktemp("bad-input")
    data = folder / "small.tsv"
    with open(ml100k_path) as src, open(data, "w") as dst:
        for _, line in zip(range(5_000), src):
            dst.write(line)
    model = folder / "mfb.npz"
    res = invoke("train", "--data", data, "--model", "mfb", "--factors", "3", "--epochs", "1",
                 "--save", model, "-q")
    assert res.exit_code == 0, res.stderr
    return data, model


# ---- usage errors: one line, exit 2 ---------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["train", "--factors", "0"], "--factors"),
    (["trian"], "No such command 'trian'"),
    (["train", "--data", "/no/such/file.csv"], "/no/such/file.csv"),
    (["datasets", "info", "ml-5m"], "'ml-5m' is not one of"),
    (["compare", "--models", ""], "at least one model"),
    (["compare", "--models", " , "], "at least one model"),
    # int() and float() take these; a plain ASCII number is asked for
    (["train", "--factors", "1_0"], "'1_0' is not a plain integer"),
    (["train", "--factors", "\u0661\u0660"], "is not a plain integer"),
    (["train", "--lr", "1_0"], "'1_0' is not a plain finite number"),
    (["train", "--train-fraction", "0_5"], "'0_5' is not a plain finite number"),
    (["train", "--model", "nn", "--hidden", "1_5"], "expected comma-separated integers"),
    (["train", "--model", "nn", "--dropout", "0_4"], "expected a number"),
    (["cv", "--folds", "\u0665"], "is not a GroupLens fold"),
    (["train", "--l2", "1e308"], "--l2"),     # blamed init_scale, after a cast warning
    # a stray comma may stand for a value left out: never dropped silently
    (["train", "--model", "nn", "--dropout", "0.1,"], "'0.1,' has an empty entry"),
    (["train", "--model", "nn", "--hidden", "10,,5"], "'10,,5' has an empty entry"),
    (["train", "--model", "timesvd", "--without", "drift,"], "'drift,' has an empty entry"),
    (["compare", "--models", "mfb,,mf"], "'mfb,,mf' has an empty entry"),
    (["bench", "--factors", "10,,50"], "'10,,50' has an empty entry"),
    (["cv", "--folds", "5,"], "'5,' has an empty entry"),
])
def test_usage_errors_are_one_line_naming_the_option(args, needle):
    line = one_line(invoke(*args), 2, needle)
    assert "--help" in line  # and where to look


def test_an_unwritable_standard_output_is_one_line_not_a_traceback(small):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    _, model = small
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "mfcore", "predict", str(model), "--user",
                              "196", "--item", "242"], stdout=full, stderr=subprocess.PIPE,
                             text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: cannot write standard output: No space left on device"]


def test_a_closed_standard_output_fails_only_when_output_is_lost(small, tmp_path):
    """Started with stdout closed (``>&-``), Python would drop the prediction and exit 0."""
    _, model = small

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mfcore", *args], stdout=None,
                              stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    res = run("predict", str(model), "--user", "196", "--item", "242")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["error: cannot write standard output: it is closed"]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n196,242\n")
    out = tmp_path / "out.csv"
    res = run("predict", str(model), "--input", str(pairs), "--output", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert out.read_text().startswith("user,item")


# ---- predict --input -----------------------------------------------------------------------
def _pairs(tmp_path, text, name="pairs.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_predict_input_with_a_bom_reads_its_header(small, tmp_path):
    _, model = small
    with_bom = _pairs(tmp_path, b"\xef\xbb\xbfuser,item\n196,242\n", "bom.csv")
    plain = _pairs(tmp_path, b"user,item\n196,242\n", "plain.csv")
    res = invoke("predict", model, "--input", with_bom)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == invoke("predict", model, "--input", plain).stdout


@pytest.mark.parametrize("text,line", [
    ("user,item\n196,242\f\n186,302\nabc,1\n", 4),          # a form feed is no line break
    ("user,item\n196,242\u2028\n186,302\nabc,1\n", 4),      # nor is U+2028
    ("user,item\r\n196,242\r\n186,302\r\nabc,1\r\n", 4),    # CRLF
    ('user,item,note\n196,242,"two\nlines"\nabc,1,x\n', 4),  # a quoted field spans 2, 3
])
def test_predict_input_errors_name_the_line_an_editor_shows(small, tmp_path, text, line):
    _, model = small
    res = invoke("predict", model, "--input", _pairs(tmp_path, text))
    one_line(res, 1, f"line {line}:", "'abc'")


def test_predict_input_with_a_huge_field_is_one_line(small, tmp_path):
    _, model = small
    res = invoke("predict", model, "--input",
                 _pairs(tmp_path, "user,item\n196," + "2" * 200_000 + "\n"))
    one_line(res, 1, "line 2:", "field larger than field limit")


def test_predict_input_reads_a_pipe_and_refuses_a_folder(small, tmp_path):
    """A pipe being written (``--input <(...)``, ``/dev/stdin`` in a pipeline) is read like
    a file; a folder or a device is one error line."""
    import threading
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    _, model = small
    fifo = tmp_path / "pairs.fifo"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "w") as fh:
            fh.write("user,item\n196,242\n")

    writer = threading.Thread(target=write)
    writer.start()
    res = invoke("predict", model, "--input", fifo)
    writer.join(timeout=30)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines()[0] == "user,item,prediction"
    assert res.stdout.splitlines()[1].startswith("196,242,")
    one_line(invoke("predict", model, "--input", tmp_path), 2, "--input", "is a directory")
    if os.path.exists("/dev/null"):
        one_line(invoke("predict", model, "--input", "/dev/null"), 1, "character device")


@pytest.mark.parametrize("option,value", [
    ("--user", "1_96"), ("--user", "\u0661\u0669\u0666"),   # Python's int() takes both
])
def test_ids_are_plain_ascii_integers(small, option, value):
    _, model = small
    args = {"--user": "196", "--item": "242", option: value}
    res = invoke("predict", model, *[x for kv in args.items() for x in kv])
    one_line(res, 1, f"user id {value!r} is not an integer")


@pytest.mark.parametrize("value", ["893_286_638", "\u0668\u0669\u0663\u0662\u0668\u0666"])
def test_timestamps_are_plain_ascii_seconds_or_iso_dates(small, value):
    _, model = small
    res = invoke("predict", model, "--user", "196", "--item", "242", "--timestamp", value)
    one_line(res, 2, "--timestamp", "neither whole seconds")


# ---- ratings files ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad,shown", [("\t242", r"'\t242'"), ("\xa0242", r"'\xa0242'")])
def test_a_bad_field_is_quoted_with_the_character_that_made_it_bad(tmp_path, bad, shown):
    path = tmp_path / "r.csv"
    path.write_text("1,1,5,881250949\n2," + bad + ",3,881250949\n", encoding="utf-8")
    res = invoke("train", "--data", path, "--sep", ",", "--epochs", "1", "-q")
    one_line(res, 1, "line 2, column 2", f"item {shown} is not an integer")


def test_a_builtin_set_cut_short_mid_line_is_refused(tmp_path, ml100k_path):
    folder = tmp_path / "home" / "ml-100k"
    folder.mkdir(parents=True)
    with open(ml100k_path, "rb") as src:
        (folder / "u.data").write_bytes(src.read(60_000))  # ends inside a line
    with pytest.raises(DataError, match="cut short"):
        load_dataset("ml-100k", data_home=tmp_path / "home", download=False)
    res = invoke("train", "--dataset", "ml-100k", "--epochs", "1", "-q",
                 env={"MFCORE_DATA_HOME": str(tmp_path / "home")})
    one_line(res, 1, "u.data", "cut short")
    shutil.rmtree(folder)


def test_the_temporal_split_refuses_ratings_without_timestamps(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(20) for i in range(5)))
    res = invoke("train", "--data", path, "--sep", ",", "--split", "temporal", "--epochs", "1",
                 "-q")
    one_line(res, 1, "temporal split", "no timestamps")
    from mfcore.data import load_file
    with pytest.raises(DataError, match="no timestamps"):
        make_split(load_file(path, sep=","), "temporal")


# ---- outputs and searches --------------------------------------------------------------------
def test_an_empty_save_name_is_refused_before_training(small):
    data, _ = small
    one_line(invoke("train", "--data", data, "--epochs", "1", "--save", "", "-q"), 1,
             "--save", "empty")


@pytest.mark.parametrize("how", [["--grid", "epochs=0"], ["--grid", "epochs=0,1"]])
def test_tune_refuses_untrained_trials(small, how):
    data, _ = small
    res = invoke("tune", "--data", data, "--model", "mfb", "--factors", "2", "--jobs", "1",
                 "--folds", "2", "-q", *how)
    one_line(res, 2, "--grid", "epochs=0", "at least 1")     # a value of --grid: usage


def test_compare_says_on_stderr_which_model_failed_and_why(small):
    data, _ = small
    res = invoke("compare", "--data", data, "--models", "mf", "--factors", "2", "--epochs", "2",
                 "--lr", "1e6", "-q")
    assert res.exit_code == 1
    line = one_line(res, 1, "1 of 1 run(s) failed", "mf:", "diverged")
    assert "failed" in res.stdout  # the table marks it too
    assert line


@pytest.mark.parametrize("address,words", [
    ("not an address", "is not a Dask scheduler address"),
    ("inproc://nowhere", "is an inproc:// address, and no scheduler of this process"),
])
def test_a_malformed_scheduler_address_fails_at_once(small, address, words):
    pytest.importorskip("distributed")
    data, _ = small
    res = subprocess.run([sys.executable, "-m", "mfcore", "cv", "--data", str(data), "--model",
                          "mfb", "--factors", "2", "--epochs", "1", "--folds", "2", "-q",
                          "--scheduler", address], capture_output=True, text=True,
                         timeout=50)  # the half-built client's finaliser used to wait 60 s
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr


def test_an_inproc_scheduler_of_this_process_is_accepted(monkeypatch):
    """Refusing inproc:// (its Client waited a minute at exit when nothing listened) must
    not refuse a scheduler that listens in this very process."""
    pytest.importorskip("distributed")
    from distributed.comm.inproc import global_manager
    from mfcore.errors import MfcoreError
    from mfcore.parallel import _check_address
    # the manager finds this host's address by a UDP connect, which the tests forbid
    monkeypatch.setattr(global_manager, "_ip", "127.0.0.1")
    location = global_manager.new_address()
    listener = type("Listener", (), {})()        # the manager keeps a weak reference
    global_manager.add_listener(location, listener)
    try:
        _check_address(f"inproc://{location}")
    finally:
        global_manager.remove_listener(location)
    with pytest.raises(MfcoreError, match="no scheduler of this process listens there"):
        _check_address(f"inproc://{location}")       # gone: nothing listens now


def test_time_input_options_without_time_features_are_refused(small):
    data, _ = small
    res = invoke("train", "--data", data, "--model", "nn", "--time-factors", "4", "--epochs",
                 "1", "-q")
    one_line(res, 2, "--time-factors", "used only with --time-features")


def test_file_names_that_are_not_utf8_work(small, tmp_path):
    """A POSIX file name is bytes: one with a byte that is not UTF-8 (Latin-1's ÿ) trains,
    saves, loads and is named in errors, where the cache key's hash raised
    UnicodeEncodeError (a real process: the name reaches argv as bytes)."""
    data, _ = small
    folder = os.fsencode(tmp_path)
    good, bad, model = (folder + name for name in (b"/ratings\xff.tsv", b"/bad\xff.tsv",
                                                    b"/model\xff.npz"))
    with open(data, "rb") as src, open(good, "wb") as dst:
        dst.write(src.read())
    with open(bad, "wb") as dst:
        dst.write(b"196\t242\t3\t881250949\nx\t1\t1\t1\n")

    def run(*args):
        return subprocess.run([os.fsencode(sys.executable), b"-m", b"mfcore", *args],
                              capture_output=True)
    res = run(b"train", b"--data", good, b"--model", b"mfb", b"--factors", b"2", b"--epochs",
              b"1", b"-q", b"--save", model)
    assert res.returncode == 0 and res.stdout.rstrip().endswith(b"model\xff.npz"), res.stderr
    res = run(b"predict", model, b"--user", b"196", b"--item", b"242")
    assert res.returncode == 0 and float(res.stdout) > 0, res.stderr
    res = run(b"train", b"--data", bad, b"--model", b"mfb", b"--epochs", b"1")
    assert res.returncode == 1 and b"Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()    # stderr escapes the byte: bad\udcff.tsv
    assert len(lines) == 1 and lines[0].endswith(
        b"/bad\\udcff.tsv, line 2, column 1: user 'x' is not an integer"), res.stderr


def test_ids_typed_with_a_tab_or_newline_around_them_are_read_as_with_spaces(small):
    """'242\\n' (from $(...) or a paste) failed with "cannot read the item ids", no value."""
    _, model = small
    want = invoke("predict", model, "--user", "196", "--item", "242").stdout
    for user, item in (("196", "242\n"), ("196\t", "242"), (" 196 ", "\t242\r\n")):
        res = invoke("predict", model, "--user", user, "--item", item)
        assert res.exit_code == 0 and res.stdout == want, res.output
    one_line(invoke("predict", model, "--user", "196", "--item", "24\n2"), 1,
             "item id '24\\n2' is not an integer")


def test_an_id_too_large_for_64_bits_says_so_briefly(small):
    """A 300-digit id was echoed whole and called 'not an integer'."""
    _, model = small
    line = one_line(invoke("predict", model, "--user", "9" * 300, "--item", "242"), 1,
                    "is too large: the model's user ids are 64-bit integers")
    assert "(300 characters)" in line and len(line) < 150
    one_line(invoke("predict", model, "--user", "196", "--item", "1" + "0" * 19), 1,
             "item id '10000000000000000000' is too large")


def test_a_pairs_header_without_an_item_column_is_named(small, tmp_path):
    """'user,timestamp' was read as data: "user id 'user' is not an integer"."""
    _, model = small
    one_line(invoke("predict", model, "--input", _pairs(tmp_path, "user,timestamp\n196,1\n")),
             1, "line 1", "the header names user, timestamp but no item column")
    one_line(invoke("predict", model, "--input", _pairs(tmp_path, "item,rating\n242,3\n")),
             1, "line 1", "the header names item but no user column")


def test_bad_values_reaching_the_library_name_the_argument(small, ml100k):
    """Library callers get the argument named, not NumPy's int() error or 'no folds'."""
    import mfcore
    from mfcore.errors import MfcoreError, ModelError
    from mfcore.tune import search
    _, model_path = small
    model = mfcore.load_model(model_path)
    for ts, why in ((["x"], "timestamp 'x' is neither whole seconds"),
                    ([1, 2, 3], "3 timestamps for 1 pairs")):
        with pytest.raises(ModelError, match=f"timestamps must be seconds since 1970-01-01 UTC "
                                             f".*: {why}"):
            model.predict([196], [242], timestamps=ts)
    with pytest.raises(MfcoreError, match="holds out no rating"):
        search("mfb", ml100k, grid="factors=2", holdout=1e-300, epochs=1, jobs=1)


def test_the_largest_batch_size_is_the_whole_training_set(small):
    """--batch-size 2147483647 (in range) was refused on 5,000 ratings as needing 32 GiB:
    the fused Adam path sized a buffer by the batch size, not by the batch it gets."""
    data, _ = small
    res = invoke("train", "--data", data, "--model", "mfb", "--factors", "2", "--epochs", "1",
                 "--batch-size", "2147483647", "-q")
    assert res.exit_code == 0, res.output


def test_predictions_and_plots_never_replace_a_model(small, tmp_path):
    """--output and --plot over an mfcore model (here through a symlink) are refused; the
    model is intact. --save alone may replace a model."""
    data, model = small
    other = tmp_path / "other.npz"
    other.write_bytes(model.read_bytes())
    link = tmp_path / "predictions.csv"
    link.symlink_to(other)
    pairs = _pairs(tmp_path, "user,item\n196,242\n")
    before = other.read_bytes()
    one_line(invoke("predict", model, "--input", pairs, "--output", link), 1, "--output",
             "is an mfcore model; refusing to write over it")
    assert other.read_bytes() == before
    out = tmp_path / "plain.csv"
    out.write_text("old predictions\n")
    res = invoke("predict", model, "--input", pairs, "--output", out)
    assert res.exit_code == 0 and out.read_text().startswith("user,item")
