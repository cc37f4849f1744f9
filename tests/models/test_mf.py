"""Behaviour of the MF family and of what every model shares (fit, predict, evaluate,
recommend, similar items, save/load, early stopping, divergence) on real MovieLens 100K."""
import json

import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore.errors import DataError, ModelError, TrainingDiverged
from mfcore.models import MFB, MFBS, MF, create_model, load_model


@pytest.fixture(scope="module")
def fitted(ml100k_split):
    train, val = ml100k_split
    model = MFB(factors=10, seed=0)
    model.fit(train, validation=val, epochs=3, verbose=0)
    return model


def test_same_seed_same_numbers_other_seed_other_numbers(ml100k_split):
    train, val = ml100k_split
    runs = []
    for seed in (3, 3, 4):
        m = MFBS(factors=8, seed=seed)
        h = m.fit(train, validation=val, epochs=2, verbose=0)
        runs.append((h.loss, h.val_loss, m.U_.copy()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][1] != runs[2][1]


def test_progress_chunking_does_not_change_results(ml100k_split):
    train, val = ml100k_split
    a = MFB(factors=5, seed=1).fit(train, val, epochs=1, verbose=0, progress=False)
    b = MFB(factors=5, seed=1).fit(train, val, epochs=1, verbose=0, progress=True)
    assert a.val_loss == b.val_loss


def test_lazy_adam_equals_step_by_step_dense_adam(ml100k_split):
    train, val = ml100k_split
    lazy = MFB(factors=10, seed=0)
    dense = MFB(factors=10, seed=0)
    h1 = lazy.fit(train, val, epochs=2, optimizer="adam", verbose=0)
    h2 = dense.fit(train, val, epochs=2, optimizer="adam-dense", verbose=0)
    assert abs(h1.val_mse[-1] - h2.val_mse[-1]) < 1e-4
    assert np.max(np.abs(lazy.U_ - dense.U_)) < 1e-3


def test_history_has_every_figure(fitted):
    h = fitted.history_
    for key in ("loss", "val_loss", "val_mse", "val_rmse", "val_mae", "seconds"):
        assert len(getattr(h, key)) == 3, key
    assert np.allclose(np.sqrt(h.val_mse), h.val_rmse)
    assert h.val_loss == h.val_mse  # no regulariser: Keras' val_loss is the plain MSE
    assert h.loss[-1] < h.loss[0]


def test_keras_l2_penalty_is_in_loss_and_val_loss(ml100k_split):
    train, val = ml100k_split
    m = MFB(factors=10, l2=1e-3, seed=0)
    h = m.fit(train, val, epochs=1, verbose=0)
    penalty = 1e-3 * float(np.sum(m.user_factors_.astype(np.float64) ** 2)
                           + np.sum(m.item_factors_.astype(np.float64) ** 2))
    assert h.val_loss[0] == pytest.approx(h.val_mse[0] + penalty, rel=1e-6)
    assert penalty > 0.01


def test_evaluate_matches_numpy(fitted, ml100k_split):
    _, val = ml100k_split
    res = fitted.evaluate(val)
    p = (np.sum(fitted.user_factors_[val.users] * fitted.item_factors_[val.items], axis=1)
         + fitted.user_bias_[val.users] + fitted.item_bias_[val.items])
    err = p.astype(np.float64) - val.ratings
    assert res["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-5)
    assert res["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-5)
    assert res["rmse"] == pytest.approx(np.sqrt(res["mse"]))
    assert res["mse"] == pytest.approx(fitted.history_.val_mse[-1], rel=1e-6)


def test_predict_raw_ids_unknowns_and_clip(fitted, ml100k):
    p = fitted.predict([1, 1], [1, 2])
    assert p.dtype == np.float32 and p.shape == (2,)
    u = ml100k.user_index(1)
    i = ml100k.item_index(2)
    np.testing.assert_allclose(p[1], fitted.predict([u], [i], ids="index")[0])
    with pytest.raises(ModelError, match="never saw"):
        fitted.predict([1], [999999])
    np.testing.assert_allclose(fitted.predict([1], [999999], unknown="mean"), fitted.global_mean_)
    assert np.isnan(fitted.predict([999999], [1], unknown="nan")[0])
    clipped = fitted.predict(np.repeat(1, 50), ml100k.item_ids[:50], clip=True, unknown="mean")
    assert clipped.min() >= 1.0 and clipped.max() <= 5.0


def test_items_only_in_validation_count_as_unknown(fitted, ml100k_split):
    train, val = ml100k_split
    cold = np.setdiff1d(np.unique(val.items), np.unique(train.items))
    assert len(cold) > 0  # the seed-0 split of u.data has items rated only in validation
    raw = val.item_ids[cold[0]]
    with pytest.raises(ModelError):
        fitted.predict([1], [raw])


def test_recommend_excludes_seen_and_cold_items(fitted, ml100k_split):
    train, _ = ml100k_split
    user_raw = 1
    rec = fitted.recommend(user_raw, n=15)
    assert list(rec.columns[:2]) == ["item", "score"] and len(rec) == 15
    assert rec["score"].is_monotonic_decreasing
    u = train.user_index(user_raw)
    seen = set(train.item_ids[train.items[train.users == u]])
    assert not seen & set(rec["item"])
    with_seen = fitted.recommend(user_raw, n=2000, exclude_seen=False)
    assert seen <= set(with_seen["item"])
    trained_items = set(train.item_ids[np.unique(train.items)])
    assert set(with_seen["item"]) <= trained_items
    # scores are the model's predictions
    np.testing.assert_allclose(rec["score"].to_numpy(), fitted.predict([user_raw] * 15, rec["item"]),
                               rtol=1e-6)
    with pytest.raises(ModelError):
        fitted.recommend(987654)


def test_similar_items_by_cosine(fitted):
    sim = fitted.similar_items(50, n=5)
    assert len(sim) == 5 and 50 not in set(sim["item"])
    assert sim["similarity"].is_monotonic_decreasing
    E = fitted.item_factors_
    i = fitted.item_ids_.tolist().index(50)
    j = fitted.item_ids_.tolist().index(sim["item"].iloc[0])
    cos = E[i] @ E[j] / np.linalg.norm(E[i]) / np.linalg.norm(E[j])
    assert sim["similarity"].iloc[0] == pytest.approx(cos, rel=1e-5)


def test_save_load_round_trip(fitted, tmp_path, ml100k_split):
    _, val = ml100k_split
    path = tmp_path / "m.npz"
    fitted.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind
    loaded = load_model(path)
    assert type(loaded) is MFB and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict([1, 2], [3, 4]), fitted.predict([1, 2], [3, 4]))
    assert loaded.evaluate(val) == fitted.evaluate(val)
    assert loaded.history_.val_loss == fitted.history_.val_loss
    pd.testing.assert_frame_equal(loaded.recommend(1, n=5), fitted.recommend(1, n=5))
    # npz without pickles: numpy can read every array with allow_pickle=False
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert meta["model"] == "mfb" and meta["params"]["factors"] == 10


def test_load_rejects_bad_files(fitted, tmp_path):
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not an mfcore model"):
        load_model(bad)
    with pytest.raises(ModelError, match="no such"):
        load_model(tmp_path / "missing.npz")
    good = tmp_path / "good.npz"
    fitted.save(good)
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["table.users"] = arrays["table.users"][:, :3]
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(ModelError, match="shape"):
        load_model(tmp_path / "shape.npz")
    arrays["table.users"] = np.full_like(fitted.U_, np.nan)
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(ModelError, match="NaN"):
        load_model(tmp_path / "nan.npz")


def test_early_stopping_restores_best_epoch(ml100k_split):
    train, val = ml100k_split
    m = MFBS(factors=50, seed=0)  # overfits after epoch 3-4, as in the notebook
    h = m.fit(train, val, epochs=12, early_stopping=1, verbose=0)
    assert h.stopped_early and len(h.val_mse) < 12
    best = int(np.argmin(h.val_mse))
    assert h.best_epoch == best + 1
    assert m.evaluate(val)["mse"] == pytest.approx(h.val_mse[best], rel=1e-6)


def test_divergence_keeps_last_good_weights(ml100k_split):
    train, val = ml100k_split
    m = MF(factors=10, seed=0)
    m.fit(train, val, epochs=1, verbose=0)
    before = m.U_.copy()
    with pytest.raises(TrainingDiverged, match="smaller learning rate"):
        m.fit(train, val, epochs=2, optimizer="sgd", lr=50.0, verbose=0)
    assert np.all(np.isfinite(m.U_))
    np.testing.assert_array_equal(m.U_, before)


def test_per_sample_sgd_learns(ml100k_split):
    train, val = ml100k_split
    m = MFB(factors=10, l2=0.02, l2_mode="per-sample", init="normal", init_scale=0.1, seed=0)
    h = m.fit(train, val, epochs=15, batch_size=1, optimizer="sgd", lr=0.01, verbose=0)
    # on this split the training mean scores RMSE 1.128 and a bias-only model (baseline:
    # mu + b_u + b_i) 0.951; the factors must take it below both: 0.934 at its best epoch
    # (it overfits after epoch 9 and ends at 0.946)
    assert min(h.val_rmse) < 0.94 and h.val_rmse[-1] < 0.95
    assert h.val_rmse[-1] < h.val_rmse[0]


def test_sparse_adam_trains(ml100k_split):
    train, val = ml100k_split
    h = MFBS(factors=10, seed=0).fit(train, val, epochs=4, optimizer="sparse-adam", verbose=0)
    # the training mean scores MSE 1.272 on this split, a bias-only model 0.904; MFBS
    # reaches 0.887 after 4 epochs
    assert h.val_mse[-1] < 0.895


def test_dataframe_input_and_validation(ml100k):
    df = ml100k.to_dataframe()
    train_df, val_df = df.iloc[:80000], df.iloc[80000:]
    val_df = val_df[val_df["user"].isin(train_df["user"]) & val_df["item"].isin(train_df["item"])]
    m = MFB(factors=5)
    m.fit(train_df, validation=val_df, epochs=1, verbose=0)
    assert len(m.history_.val_mse) == 1
    with pytest.raises(DataError, match="lacks column"):
        MFB().fit(df.rename(columns={"rating": "stars"}), epochs=1, verbose=0)


def test_bad_hyper_parameters_are_clear(ml100k_split):
    with pytest.raises(ModelError, match="factors"):
        MFB(factors=0).fit(ml100k_split[0], epochs=1, verbose=0)
    with pytest.raises(ModelError, match="factors"):
        create_model("mfb", factors=0)
    with pytest.raises(ModelError, match="l2_mode"):
        MFB().set_params(l2=0.1, l2_mode="sometimes")
    with pytest.raises(ModelError, match="unknown model"):
        create_model("svd++")
    with pytest.raises(ModelError, match="no parameter 'hidden'"):
        create_model("mfb", hidden=(4,))
    with pytest.raises(ModelError, match="seed"):
        MFB(seed=-1).fit(ml100k_split[0], epochs=1, verbose=0)
    with pytest.raises(ModelError, match="not fitted"):
        MFB().predict([1], [1])


def test_sparse_adam_refuses_keras_l2(ml100k_split):
    train, _ = ml100k_split
    with pytest.raises(ModelError, match="per-sample"):
        MFB(l2=1e-3).fit(train, epochs=1, optimizer="sparse-adam", verbose=0)


def test_warm_restart_continues(ml100k_split):
    train, val = ml100k_split
    a = MFB(factors=10, seed=0)
    a.fit(train, val, epochs=2, verbose=0)
    a.fit(train, val, epochs=1, verbose=0)
    assert a.epochs_trained_ == 3
    b = MFB(factors=10, seed=0)
    b.fit(train, val, epochs=3, verbose=0)
    assert a.history_.val_mse[-1] == pytest.approx(b.history_.val_mse[-1], abs=1e-6)


def test_public_api_is_importable():
    assert mfcore.MFB is MFB
    assert callable(mfcore.random_split) and callable(mfcore.load_dataset)


@pytest.mark.parametrize("keras_moments", [True, False])
def test_second_moment_of_a_row_repeated_in_a_batch(keras_moments):
    """Keras 3 squares an embedding gradient's IndexedSlices one occurrence at a time, so a
    row used twice in a batch gets v = (1-b2)(g1^2 + g2^2); the textbook rule squares the
    sum. One Adam step on a batch of two ratings of the same item shows which is applied."""
    from mfcore.data import Ratings
    data = Ratings.from_arrays([1, 2], [7, 7], [5.0, 1.0])
    m = MF(factors=3, seed=0)
    m.fit(data, epochs=0, verbose=0)
    P, Q = m.U_.astype(np.float64).copy(), m.I_.astype(np.float64).copy()
    m.fit(data, epochs=1, batch_size=2, keras_moments=keras_moments, verbose=0)
    d = 2 * (np.sum(P * Q[0], axis=1) - np.array([5.0, 1.0])) / 2  # d loss / d prediction
    g = d[:, None] * P  # per-occurrence gradients of the item row
    expect = (g ** 2).sum(axis=0) if keras_moments else g.sum(axis=0) ** 2
    _, VI = m.optimizer_state_.moments(m.tables_, "items")
    np.testing.assert_allclose(VI[0], 0.001 * expect, rtol=1e-4)


def test_the_thresholds_above_fail_a_bias_only_model(ml100k_split):
    """The oracle behind the two thresholds above: a bias-only model (no factors) and the
    training mean, on the same split, score above them."""
    train, val = ml100k_split
    h = create_model("baseline").fit(train, val, verbose=0)
    assert min(h.val_rmse) > 0.94 and min(h.val_mse) > 0.895
    mean_mse = float(np.mean((val.ratings - train.ratings.mean()) ** 2))
    assert mean_mse > 0.895 and np.sqrt(mean_mse) > 0.95
