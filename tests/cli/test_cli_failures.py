"""Failures of ``mfcore train`` that must cost nothing (issue 12, classes 1 and 5): one
error line, the right exit code, no traceback, and no file written or replaced."""
import hashlib
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mfcore.cli import main


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, ml100k_path):
    """The first 20,000 ratings of u.data (tab-separated)."""
    path = tmp_path_factory.mktemp("data") / "small.tsv"
    with open(ml100k_path) as src, open(path, "w") as dst:
        for _, line in zip(range(20_000), src):
            dst.write(line)
    return path


@pytest.fixture(scope="module")
def good_model(tmp_path_factory, small_data):
    path = tmp_path_factory.mktemp("models") / "good.npz"
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "1",
                                    "--factors", "4", "--save", str(path), "-q"])
    assert res.exit_code == 0, res.stderr
    return path


def _one_error_line(res, code=1):
    assert res.exit_code == code, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("args", [
    ["--optimizer", "adam", "--lr", "1e6"],                       # finite, past the bound
    ["--optimizer", "sgd", "--batch-size", "1", "--lr", "100"],   # NaN, fused SGD
    ["--optimizer", "sparse-adam", "--lr", "1e6"],
    ["--optimizer", "sgd", "--batch-size", "64", "--lr", "1e4"],
])
def test_divergence_never_replaces_a_good_model(args, small_data, good_model, tmp_path):
    target = tmp_path / "keep.npz"
    target.write_bytes(good_model.read_bytes())
    before = _digest(target)
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "2",
                                    "--save", str(target), *args])
    line = _one_error_line(res)
    assert "training diverged in epoch 1 of 2" in line and "smaller learning rate" in line
    assert line.endswith(f"{target} was left as it was")
    assert "kept the weights" not in line
    assert _digest(target) == before
    assert sorted(os.listdir(tmp_path)) == ["keep.npz"]  # no temp file either


def test_divergence_without_an_existing_file_writes_nothing(small_data, tmp_path):
    target = tmp_path / "new.npz"
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "2",
                                    "--lr", "1e6", "--save", str(target), "-q"])
    line = _one_error_line(res)
    assert line.endswith(f"{target} was not written") and not target.exists()
    assert res.stdout == ""  # no result line for a failed run


def test_init_scale_is_blamed_not_the_learning_rate(small_data):
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "2",
                                    "--init-scale", "1e300"])
    line = _one_error_line(res)
    assert "init_scale 1e+300 is too large" in line and "learning rate" not in line
    assert "RuntimeWarning" not in res.stderr and line.endswith("nothing was saved")


def test_memory_refusal_is_one_line_with_the_figures(small_data, good_model, tmp_path,
                                                     monkeypatch):
    target = tmp_path / "keep.npz"
    target.write_bytes(good_model.read_bytes())
    before = _digest(target)
    monkeypatch.setenv("MFCORE_MEMORY_LIMIT", "20MiB")
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "1",
                                    "--factors", "2000", "--save", str(target)])
    line = _one_error_line(res)
    assert line.startswith("error: training mfb with these settings needs ")
    assert "tables" in line and "Adam state" in line and "the limit is 20 MiB" in line
    assert _digest(target) == before


def test_divergence_in_a_real_process_prints_one_line(small_data, tmp_path):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "mfcore", "train", "--data", str(small_data),
                          "--epochs", "2", "--lr", "1e6", "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.count("training diverged") == 1 and out.stdout == ""


# ---- class 5: every numeric option is bounded (usage error, exit 2, before any work) ----
BAD_ARGS = [
    ("train", ["--seed", "-1"], "--seed"),
    ("train", ["--seed", str(2 ** 63)], "--seed"),
    ("train", ["--seed", str(2 ** 64)], "--seed"),
    ("train", ["--split-seed", "-1"], "--split-seed"),
    ("train", ["--split-seed", str(2 ** 64)], "--split-seed"),
    ("train", ["--factors", "1000000000"], "--factors"),
    ("train", ["--factors", "0"], "--factors"),
    ("train", ["--batch-size", str(10 ** 15)], "--batch-size"),
    ("train", ["--epochs", str(10 ** 20)], "--epochs"),
    ("train", ["--early-stopping", str(10 ** 20)], "--early-stopping"),
    ("train", ["--lr", "nan"], "--lr"),
    ("train", ["--lr", "inf"], "--lr"),
    ("train", ["--lr", "-1"], "--lr"),
    ("train", ["--l2", "inf"], "--l2"),
    ("train", ["--l2", "nan"], "--l2"),
    ("train", ["--init-scale", "nan"], "--init-scale"),
    ("train", ["--train-fraction", "nan"], "--train-fraction"),
    ("train", ["--train-fraction", "1"], "--train-fraction"),
    ("train", ["--threads", "4096"], "--threads"),
    ("train", ["--model", "nn", "--hidden", "100000000"], "--hidden"),
    ("train", ["--model", "nn", "--hidden", ",".join(["4"] * 65)], "--hidden"),
    ("train", ["--model", "nn", "--dropout", "nan"], "--dropout"),
    ("train", ["--model", "nn", "--input-dropout", "nan"], "--input-dropout"),
    ("train", ["--model", "mixed-bias", "--bias-factors", str(2 ** 40)], "--bias-factors"),
    ("train", ["--model", "timesvd", "--bins", "0"], "--bins"),
    ("train", ["--model", "timesvd", "--bins", str(2 ** 40)], "--bins"),
    ("train", ["--model", "timesvdpp", "--beta", "nan"], "--beta"),
    ("train", ["--model", "timesvdpp", "--beta", "100"], "--beta"),
    ("train", ["--model", "timesvdpp", "--beta", "-0.1"], "--beta"),
    ("train", ["--model", "svdpp", "--l2-bias", "inf"], "--l2-bias"),
    ("train", ["--model", "svdpp", "--l2-bias", "-1"], "--l2-bias"),
    ("train", ["--model", "nn", "--time-features", "--time-factors", str(2 ** 40)],
     "--time-factors"),
    ("train", ["--model", "nn", "--time-features", "--time-factors", "0"], "--time-factors"),
    ("compare", ["--factors", "10,1000000000"], "--factors"),
    ("compare", ["--split-seed", str(2 ** 64)], "--split-seed"),
    ("compare", ["--epochs", "0"], "--epochs"),
    ("compare", ["--repeats", str(10 ** 9)], "--repeats"),
    ("compare", ["--seed", "-5"], "--seed"),
    ("bench", ["--ratings", str(10 ** 12)], "--ratings"),
    ("bench", ["--seed", str(2 ** 64)], "--seed"),
    ("bench", ["--factors", "0"], "--factors"),
    ("bench", ["--batch-size", str(2 ** 40)], "--batch-size"),
]


@pytest.mark.parametrize("command,args,option", BAD_ARGS,
                         ids=[f"{c}{' '.join(a)[:40]}" for c, a, _ in BAD_ARGS])
def test_out_of_range_numbers_are_usage_errors(command, args, option, tmp_path):
    res = CliRunner().invoke(main, [command, *args], catch_exceptions=False)
    line = _one_error_line(res, code=2)
    assert option in line
    assert os.listdir(tmp_path) == []


def test_the_largest_seeds_are_accepted(small_data):
    res = CliRunner().invoke(main, ["train", "--data", str(small_data), "--epochs", "1",
                                    "--factors", "2", "--seed", str(2 ** 63 - 1),
                                    "--split-seed", str(2 ** 63 - 1), "--optimizer", "sgd",
                                    "--batch-size", "1", "-q"])
    assert res.exit_code == 0, res.stderr
