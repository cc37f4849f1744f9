"""The Keras parity rule shared by the parity tests.

From epoch 3 on, mfcore's validation loss must be within max(0.03, 2 x the gap between two
Keras runs with different initial weights) of the first Keras run, epoch by epoch.

mfcore's side is the mean over several seeds (``conftest.PARITY_SEEDS``): one run is one
draw from a spread that the two reference runs understate. Six more Keras runs of ``nn`` at
k=10 (init seeds 3-8, same script and versions) gave epoch-3 val_loss 0.948, 0.919, 0.933,
0.937, 0.941, 0.924: three of them outside this very band around the first reference run
(0.902); their mean with the two reference runs, 0.928, is what mfcore's 8-seed mean
(0.929) reproduces.
"""
import json
from pathlib import Path

FIRST_CHECKED_EPOCH = 3
FLOOR = 0.03


def load_reference(shared: Path):
    ref = json.loads((shared / "reference" / "keras_ml100k.json").read_text())
    ref2 = json.loads((shared / "reference" / "keras_ml100k_init2.json").read_text())
    return ref, ref2


def parity_violations(ours, keras1, keras2):
    """Epochs (1-based) where ``ours`` leaves the band, as (epoch, ours, keras, allowed)."""
    bad = []
    assert len(ours) == len(keras1) == len(keras2)
    for e in range(FIRST_CHECKED_EPOCH - 1, len(keras1)):
        allowed = max(FLOOR, 2 * abs(keras1[e] - keras2[e]))
        if abs(ours[e] - keras1[e]) > allowed:
            bad.append((e + 1, ours[e], keras1[e], allowed))
    return bad


def table(key, ours, keras1, keras2):
    rows = [f"{key}: epoch  mfcore   keras(1)  keras(2)"]
    for e, (a, b, c) in enumerate(zip(ours, keras1, keras2), start=1):
        rows.append(f"        {e}      {a:.4f}   {b:.4f}    {c:.4f}")
    return "\n".join(rows)


def reference_result(key, zoo_means, split, shared_dir):
    """mfcore's 8-seed result for ``key`` (e.g. ``"mfb/k=10"``) after checking the split
    matches the reference's, plus the two Keras curves: ``(result, keras1, keras2)``."""
    ref, ref2 = load_reference(shared_dir)
    train, val = split
    assert ref[key]["n_train"] == len(train) and ref[key]["n_val"] == len(val)
    return zoo_means[key], ref[key]["val_loss"], ref2[key]["val_loss"]


def assert_parity(key, ours, keras1, keras2):
    print(table(key, ours, keras1, keras2))
    assert parity_violations(ours, keras1, keras2) == [], table(key, ours, keras1, keras2)
