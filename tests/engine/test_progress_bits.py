"""A progress bar runs an epoch's batches in chunks; the numbers must not notice. The
chunks' loss sums were added in Python, so the reported loss of the same seed differed in
its last digits between a terminal (bar shown) and a redirected stderr (no bar)."""
import numpy as np
import pytest

import mfcore


@pytest.mark.parametrize("name,optimizer", [("mfb", "adam"), ("mfb", "sparse-adam"),
                                            ("nn", "adam"), ("baseline", "sgd")])
def test_the_loss_is_the_same_to_the_last_bit_with_and_without_a_progress_bar(
        ml100k_split, name, optimizer, capsys):
    train, val = ml100k_split
    runs = []
    for progress in (False, True):
        model = mfcore.create_model(name, seed=0)
        hist = model.fit(train, val, epochs=2, optimizer=optimizer, verbose=0,
                         progress=progress)
        runs.append((hist.loss, hist.val_mse, model.predict(val.users[:500], val.items[:500],
                                                            ids="index")))
    (loss0, val0, p0), (loss1, val1, p1) = runs
    assert "Epoch 1" in capsys.readouterr().err   # the bar was shown, in 50 chunks
    assert loss0 == loss1 and val0 == val1 and np.array_equal(p0, p1)
