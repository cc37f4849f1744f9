"""Model files that lie or crash (issue 12, class 4): every field and invariant of a model
file is checked on load, and each bad file gives one ModelError naming the file and the
problem (from the command line: one error line, exit 1, no traceback). Pickled arrays
are never loaded, and the refusal does not read as advice to unpickle."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.errors import ModelError
from mfcore.models import MFB, create_model, load_model

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v0_1_0"


@pytest.fixture(scope="module")
def good_file(tmp_path_factory, ml100k_split):
    train, _ = ml100k_split
    model = MFB(factors=3, seed=0)
    model.fit(train, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("good") / "good.npz"
    model.save(path)
    return path


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    return arrays, meta


def _write(path, arrays, meta):
    arrays = dict(arrays)
    if meta is not None:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def _swap_first_two(a):
    a = a.copy()
    a[[0, 1]] = a[[1, 0]]
    return a


def _meta(**change):
    def edit(arrays, meta):
        meta.update(change)
        return arrays, meta
    return edit


def _drop_meta(key):
    def edit(arrays, meta):
        del meta[key]
        return arrays, meta
    return edit


def _array(key, value):
    def edit(arrays, meta):
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key]) if callable(value) else value
        return arrays, meta
    return edit


#: (name, edit, what the message must say)
CORRUPTIONS = [
    ("user ids reordered", _array("user_ids", _swap_first_two), "not strictly increasing"),
    ("item ids reordered", _array("item_ids", _swap_first_two), "not strictly increasing"),
    ("user ids repeated", _array("user_ids", lambda a: np.r_[a[:1], a[:-1]]),
     "not strictly increasing"),
    ("user ids NaN", _array("user_ids", lambda a: np.where(np.arange(len(a)) == 3, np.nan,
                                                         a.astype(float))),
     "NaN or infinite ids"),
    ("item ids infinite", _array("item_ids", lambda a: np.r_[a[:-1], np.inf]), "infinite"),
    ("epochs absurd", _meta(epochs_trained=10 ** 30), "'epochs_trained'"),
    ("user ids 2-d", _array("user_ids", lambda a: a.reshape(1, -1)), "dimension"),
    ("user ids empty", _array("user_ids", lambda a: a[:0]), "empty"),
    ("metadata a JSON list", lambda a, m: (a, [m]), "not an mfcore model file"),
    ("metadata not JSON", lambda a, m: ({**a, "meta": np.frombuffer(b"{oops", np.uint8)},
                                        None), "not an mfcore model file"),
    ("no params", _drop_meta("params"), "lacks 'params'"),
    ("no epochs_trained", _drop_meta("epochs_trained"), "lacks 'epochs_trained'"),
    ("no model name", _drop_meta("model"), "lacks 'model'"),
    ("no table", _array("table.users", None), "array 'table.users' is missing"),
    ("no theta", _array("theta", None), "array 'theta' is missing"),
    ("rating_min a word", _meta(rating_min="low"), "'rating_min' is 'low'"),
    ("rating_max below rating_min", _meta(rating_min=5.0, rating_max=1.0), "'rating_max'"),
    ("global mean NaN", _meta(global_mean=float("nan")), "'global_mean'"),
    ("epochs negative", _meta(epochs_trained=-1), "'epochs_trained'"),
    ("epochs a float", _meta(epochs_trained=1.5), "'epochs_trained'"),
    ("unknown model", _meta(model="gpt"), "unknown model 'gpt'"),
    ("future version", _meta(version=99), "version 99 is not supported"),
    ("params a list", _meta(params=[1, 2]), "'params'"),
    ("params unknown key", _meta(params={"factors": 3, "colour": "red"}),
     "bad hyper-parameters"),
    ("params factors a string", _meta(params={"factors": "3"}), "bad hyper-parameters"),
    ("params factors huge", _meta(params={"factors": 2 ** 40}), "bad hyper-parameters"),
    ("params seed negative", _meta(params={"factors": 3, "seed": -1}), "bad hyper-parameters"),
    ("tables listed wrong", _meta(tables=[["users", 1, 1]]), "do not match"),
    ("weights float64", _array("table.users", lambda a: a.astype(np.float64)), "float32"),
    ("weights wrong shape", _array("table.items", lambda a: a[:, :2]), "shape"),
    ("weights infinite", _array("table.items", lambda a: np.full_like(a, np.inf)), "NaN or infinite"),
    ("counts wrong length", _array("user_counts", lambda a: a[:-1]), "do not match"),
    ("counts negative", _array("item_counts", lambda a: a - 10 ** 6), "negative"),
    ("seen index wrapped (uint)", _array("seen_indptr", lambda a: a.astype(np.uint64)[::-1]),
     "seen"),
    ("seen items outside", _array("seen_items", lambda a: a + 10 ** 6), "outside"),
    ("seen items float", _array("seen_items", lambda a: a.astype(float)), "dtype"),
    ("n_train negative", _meta(n_train=-5), "'n_train'"),
    ("history a list", _meta(history=[1]), "'history'"),
    ("history loss words", _meta(history={"loss": ["a"]}), "'history.loss'"),
    ("history best epoch 0", _meta(history={"best_epoch": 0}), "best_epoch"),
    ("data source a string", _meta(data_source="u.data"), "'data_source'"),
    ("data source path a number", _meta(data_source={"data": 5}), "'data_source.data'"),
    ("data source unknown split", _meta(data_source={"data": "/x", "split": "u9"}),
     "'data_source.split'"),
    ("data source seed negative", _meta(data_source={"data": "/x", "split_seed": -1}),
     "'data_source.split_seed'"),
    ("data source fraction 2", _meta(data_source={"data": "/x", "train_fraction": 2}),
     "'data_source.train_fraction'"),
    ("titles of different lengths", _array("title_ids", lambda a: np.arange(3)), "title"),
]


@pytest.mark.parametrize("edit,expect", [c[1:] for c in CORRUPTIONS],
                         ids=[c[0] for c in CORRUPTIONS])
def test_each_lie_is_one_clear_error(edit, expect, good_file, tmp_path):
    arrays, meta = _arrays(good_file)
    arrays, meta = edit(dict(arrays), meta)
    bad = _write(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ModelError) as err:
        load_model(bad)
    msg = str(err.value)
    assert str(bad) in msg and expect in msg and "\n" not in msg
    res = CliRunner().invoke(main, ["predict", str(bad), "--user", "1", "--item", "1"])
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and expect in res.stderr


def test_the_good_file_loads_and_a_reordered_map_is_not_silently_used(good_file, ml100k_split):
    """The issue's example: a reordered user_ids loaded and predicted the training mean
    for every known pair. The untouched file predicts; the reordered one is refused."""
    model = load_model(good_file)
    _, val = ml100k_split
    pred = model.predict(val.user_ids[val.users[:50]], val.item_ids[val.items[:50]])
    assert np.std(pred) > 0.05  # not one constant


@pytest.mark.parametrize("version1", ["mf", "mfbs", "nn"])
def test_version_1_files_lacking_an_array_are_refused(version1, tmp_path):
    arrays, meta = _arrays(V1 / f"{version1}.npz")
    load_model(V1 / f"{version1}.npz")  # the untouched file loads
    for key in ("U", "I", "spec"):
        bad = _write(tmp_path / f"no-{key}.npz", {k: v for k, v in arrays.items() if k != key},
                     meta)
        with pytest.raises(ModelError, match=f"'{key}' is missing|kernel settings"):
            load_model(bad)


class _Trap:
    """Unpickling this creates a file: proof that something unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("where", ["meta", "table.users", "user_ids", "extra"])
def test_pickled_object_arrays_are_refused_not_loaded(where, good_file, tmp_path):
    arrays, meta = _arrays(good_file)
    marker = tmp_path / "unpickled"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    if where == "meta":
        arrays["meta"] = trap
    else:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        arrays[where] = trap
    bad = tmp_path / "pickled.npz"
    np.savez(bad, **arrays)  # allow_pickle is on when writing
    with pytest.raises(ModelError, match="not an mfcore model file") as err:
        load_model(bad)
    said = str(err.value).replace(str(bad), "FILE")   # (the file's own name says pickled)
    assert said == ("FILE: not an mfcore model file: its array " + repr(where) + " holds "
                    "Python objects (refused: loading them could run code)")
    res = CliRunner().invoke(main, ["evaluate", str(bad)])
    assert res.exit_code == 1 and "not an mfcore model file" in res.stderr
    assert "allow_pickle" not in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()


@pytest.mark.parametrize("content,expect", [
    (b"1\t1\t5\t881250949\n2\t3\t4\t881250950\n", "not an mfcore model file"),  # ratings
    (b"", "not an mfcore model file"),
    (b"PK\x03\x04garbage", "not an mfcore model file"),
    (None, "a single array"),  # a bare .npy
    ("pickle", "not an mfcore model file"),  # a whole pickle
])
def test_files_that_are_not_models(content, expect, tmp_path):
    path = tmp_path / "thing.npz"
    if content is None:
        np.save(path.with_suffix(".npy"), np.arange(4))
        path = path.with_suffix(".npy")
    elif content == "pickle":
        path.write_bytes(pickle.dumps({"U": np.zeros(3)}))
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=expect):
        load_model(path)
    for args in (["evaluate", str(path)], ["predict", str(path), "--user", "1", "--item", "1"],
                 ["recommend", str(path), "--user", "1"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1 and "Traceback" not in res.stderr, (args, res.stderr)
        assert "not an mfcore model file" in res.stderr and "allow_pickle" not in res.stderr


def test_a_model_file_is_not_a_folder_nor_a_device(tmp_path):
    with pytest.raises(ModelError, match="folder"):
        load_model(tmp_path)
    if os.path.exists("/dev/null"):
        with pytest.raises(ModelError, match="is a device, not a model file"):
            load_model("/dev/null")
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)                  # no writer: opening it would block for ever
    with pytest.raises(ModelError, match="is a named pipe, not a model file"):
        load_model(fifo)


def test_a_damaged_archive_is_called_corrupt_not_foreign(good_file, tmp_path):
    """A flipped byte inside a stored member fails its CRC: the message says the file is
    damaged and which array, not that it is some other kind of file."""
    import zipfile
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as z:
        info = z.getinfo("meta.npy")
    assert info.compress_type == zipfile.ZIP_STORED
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 3
    data[at] ^= 0x01
    bad = tmp_path / "damaged.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"a corrupt model file: its array 'meta' is damaged "
                                         r"\(Bad CRC-32"):
        load_model(bad)


def test_every_model_round_trips(tmp_path, ml100k_split):
    """The checks refuse no honest file: each model saved after one short fit loads."""
    train, _ = ml100k_split
    small = train.subset(np.arange(len(train)) < 5000)
    for name in ("mf", "mfb", "mfbs", "linear", "nn", "baseline"):
        model = create_model(name, seed=0)
        model.fit(small, epochs=1, verbose=0)
        model.save(tmp_path / f"{name}.npz")
        loaded = load_model(tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(loaded.predict([1, 2], [1, 2]), model.predict([1, 2],
                                                                                    [1, 2]))
