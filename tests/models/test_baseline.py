"""The baseline predictor mu + b_u + b_i."""
import numpy as np
import pytest

import mfcore
from mfcore.models import Baseline


def test_baseline_learns_biases_with_sgd_and_adam(ml100k_split):
    train, val = ml100k_split
    mean_mse = float(np.mean((val.ratings - train.ratings.mean()) ** 2))
    for fit in ({"optimizer": "sgd", "batch_size": 1, "lr": 0.005, "epochs": 5},
                {"optimizer": "adam", "lr": 0.01, "epochs": 5}):
        m = Baseline(l2=0.02, l2_mode="per-sample") if fit["optimizer"] == "sgd" else Baseline()
        h = m.fit(train, val, verbose=0, **fit)
        # biases explain a good part of the variance: well below the global mean's MSE
        assert h.val_mse[-1] < mean_mse - 0.15, (fit, h.val_mse, mean_mse)
        u, i = val.users[:5], val.items[:5]
        want = m.global_mean_ + m.user_bias_[u] + m.item_bias_[i]
        np.testing.assert_allclose(m.predict(u, i, ids="index", unknown="nan"), want,
                                   rtol=1e-6)


def test_baseline_saves_loads_and_has_no_factors(ml100k_split, tmp_path):
    train, val = ml100k_split
    m = Baseline()
    m.fit(train, val, epochs=1, verbose=0)
    back = mfcore.load_model(m.save(tmp_path / "b.npz"))
    np.testing.assert_array_equal(back.predict([1, 2], [1, 2]), m.predict([1, 2], [1, 2]))
    with pytest.raises(mfcore.ModelError, match="no item embedding"):
        m.similar_items(1)
