"""Divergence (issue 12, class 1): every optimizer path stops, raises TrainingDiverged with
a truthful message, and leaves the model as it was before the fit; the bound never fires
on honest training; absurd initial weights are blamed on the init scale."""
import warnings

import numpy as np
import pytest

import mfcore
from mfcore.engine.trainer import DIVERGENCE_FACTOR, INIT_FACTOR, ratings_scale
from mfcore.errors import ModelError, TrainingDiverged

# (model, its params, fit options) covering every training path of the engine: the fused
# per-sample SGD on the grid, by user runs (SVD++), in data order (shuffle none), batched
# SGD, Keras' lazy Adam, sparse Adam, the dense reference Adam, and an MLP under Adam
PATHS = {
    "sgd-grid": ("mfb", {}, dict(optimizer="sgd", batch_size=1, lr=50.0)),
    "sgd-user-runs": ("svdpp", dict(factors=4), dict(optimizer="sgd", batch_size=1, lr=50.0,
                                                     lr_decay=1.0)),
    "sgd-data-order": ("mf", {}, dict(optimizer="sgd", batch_size=1, lr=50.0, shuffle="none")),
    "sgd-batched": ("mfb", {}, dict(optimizer="sgd", batch_size=64, lr=1e4)),
    "adam": ("mfb", {}, dict(optimizer="adam", lr=1e6)),
    "sparse-adam": ("mfbs", dict(use_bias=True, sigmoid=False),
                    dict(optimizer="sparse-adam", lr=1e6)),
    "adam-dense": ("mf", dict(factors=2), dict(optimizer="adam-dense", lr=1e6, batch_size=4096)),
    "adam-nn": ("nn", dict(hidden=(8,)), dict(optimizer="adam", lr=1e6)),
}


@pytest.fixture(scope="module")
def small(ml100k_split):
    """A fifth of the reference split: enough ratings to diverge, quick to train."""
    train, val = ml100k_split
    return train.subset(np.arange(len(train)) % 5 == 0), val


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_stops_and_leaves_a_fresh_model_unfitted(path, small):
    name, params, fit = PATHS[path]
    train, val = small
    model = mfcore.create_model(name, seed=0, **params)
    with pytest.raises(TrainingDiverged) as info:
        model.fit(train, val, epochs=3, verbose=0, **fit)
    exc = info.value
    msg = str(exc)
    assert msg.startswith("training diverged in epoch 1 of 3: ")
    assert "try a smaller learning rate" in msg and "kept" not in msg
    assert exc.cause == "learning-rate" and exc.epoch == 1
    assert exc.history is not None and exc.history.diverged
    # left as before the fit: unfitted, nothing learned kept
    assert getattr(model, "tables_", None) is None and not hasattr(model, "history_")
    with pytest.raises(ModelError, match="not fitted"):
        model.predict([1], [1])


def test_a_loss_that_explodes_but_stays_finite_is_caught_by_the_bound(small):
    """Adam at lr 1e6 keeps every number finite (3.6e28) but far past the bound."""
    train, val = small
    model = mfcore.MFB(seed=0)
    with pytest.raises(TrainingDiverged) as info:
        model.fit(train, val, epochs=2, lr=1e6, verbose=0)
    msg = str(info.value)
    assert "NaN" not in msg and "above the divergence bound" in msg
    assert f"{DIVERGENCE_FACTOR:g} x the larger of the loss at the start" in msg
    loss = info.value.history.loss[-1]
    assert np.isfinite(loss) and loss > DIVERGENCE_FACTOR * ratings_scale(train.ratings)


def test_a_warm_restart_that_diverges_changes_nothing(small):
    train, val = small
    model = mfcore.MFB(factors=8, seed=0)
    model.fit(train, val, epochs=2, verbose=0)
    before = {"W": model.tables_.arena.W.copy(), "M": model.optimizer_state_.M.copy(),
              "step": model.optimizer_state_.step, "epochs": model.epochs_trained_,
              "history": model.history_, "pred": model.predict([1, 2], [1, 2])}
    with pytest.raises(TrainingDiverged, match="epoch 3 of 4"):
        model.fit(train, val, epochs=2, lr=1e6, verbose=0)
    np.testing.assert_array_equal(model.tables_.arena.W, before["W"])
    np.testing.assert_array_equal(model.optimizer_state_.M, before["M"])
    assert model.optimizer_state_.step == before["step"]
    assert model.epochs_trained_ == before["epochs"] and model.history_ is before["history"]
    np.testing.assert_array_equal(model.predict([1, 2], [1, 2]), before["pred"])
    # and it still trains normally afterwards
    h = model.fit(train, val, epochs=1, verbose=0)
    assert model.epochs_trained_ == 3 and not h.diverged


@pytest.mark.parametrize("name,params,reason", [
    ("mfb", dict(init_scale=1e300), "are not finite"),          # inf after the float32 cast
    ("mfb", dict(init_scale=1e20), "NaN or infinite predictions"),
    ("mfbs", dict(init_scale=1e20), "NaN or infinite predictions"),
    ("mf", dict(init_scale=30.0), "far off the data's scale"),  # finite, RMSE ~ 1000
    ("nn", dict(init_scale=1e30), "NaN or infinite predictions"),
])
def test_absurd_initial_weights_blame_the_init_scale(name, params, reason, small):
    train, val = small
    model = mfcore.create_model(name, seed=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warning on the way
        with pytest.raises(TrainingDiverged) as info:
            model.fit(train, val, epochs=2, verbose=0)
    msg = str(info.value)
    assert reason in msg and f"init_scale {params['init_scale']:g} is too large" in msg
    assert "learning rate" not in msg and info.value.cause == "init"
    assert getattr(model, "tables_", None) is None


def test_init_bound_is_far_above_honest_inits(small):
    """Keras' default init and even uniform(-1, 1) at k=50 start far below INIT_FACTOR."""
    train, val = small
    for init_scale in (0.05, 1.0):
        h = mfcore.MF(factors=50, init_scale=init_scale, seed=0).fit(train, val, epochs=1,
                                                                      verbose=0)
        assert h.settings["start_loss"] < INIT_FACTOR * ratings_scale(train.ratings) / 100


def test_honest_training_stays_far_below_the_bound(small):
    """The notebook's settings, Koren's SGD defaults, and a high but working Adam rate
    use a tiny fraction of the bound (benchmarks/divergence_margin.py runs the whole zoo:
    the largest fraction there is about 0.02)."""
    train, val = small
    runs = [(mfcore.MFB(seed=0), dict(epochs=3)),
            (mfcore.MFBS(factors=50, seed=0), dict(epochs=3)),
            (mfcore.create_model("svdpp", factors=10), dict(epochs=3)),
            (mfcore.create_model("baseline"), {}),
            (mfcore.MFB(factors=50, seed=0), dict(epochs=3, lr=0.05))]
    for model, fit in runs:
        h = model.fit(train, val, verbose=0, **fit)
        bound = h.settings["divergence_bound"]
        assert max(h.loss) < 0.05 * bound and max(h.val_mse) < 0.05 * bound, model


def test_no_error_line_from_fit_itself(small):
    """fit raises; it does not also log the error (the CLI prints it once)."""
    lines = []
    with pytest.raises(TrainingDiverged):
        mfcore.MFB(seed=0).fit(*small, epochs=2, lr=1e6, log=lines.append)
    assert not any("diverged" in line or line.startswith("error") for line in lines)


@pytest.mark.parametrize("name,fit", [
    ("mfbs", dict(lr=1e6)),                              # 5-sigmoid output saturates
    ("mfbs", dict(lr=1e6, optimizer="sparse-adam")),
    ("mixed-bias", dict(lr=1e5)),
])
@pytest.mark.parametrize("with_validation", [True, False])
def test_a_saturated_bounded_model_is_caught(name, fit, with_validation, small):
    """A bounded output cannot pass the bound: at a huge rate it saturates and its loss
    sticks far above where it started (mfbs: 2.3 -> 7.2, worse than predicting the mean).
    That is divergence too, with or without validation data."""
    from mfcore.engine.trainer import RISE_FACTOR
    train, val = small
    model = mfcore.create_model(name, seed=0)
    with pytest.raises(TrainingDiverged) as info:
        model.fit(train, val if with_validation else None, epochs=3, verbose=0, **fit)
    msg = str(info.value)
    assert msg.startswith("training diverged in epoch 1 of 3: ")
    assert f"more than {RISE_FACTOR:g} x" in msg and "try a smaller learning rate" in msg
    assert getattr(model, "tables_", None) is None


@pytest.mark.parametrize("with_validation", [True, False])
def test_dropout_and_overfitting_are_not_divergence(with_validation, small):
    """Warm restarts of a net with Dropout(0.7): its training loss (with dropout) is twice
    the loss of its weights without dropout, and it overfits; neither is divergence."""
    train, val = small
    model = mfcore.NN(factors=50, hidden=(75, 30), dropout=0.7, seed=0)
    for _ in range(4):
        h = model.fit(train, val if with_validation else None, epochs=1, verbose=0)
        assert not h.diverged
    # the rule's first half did fire: the training loss was above twice the start's
    assert h.loss[-1] > 2 * h.settings["start_loss"]


def test_a_drift_exponent_above_one_is_named_beside_the_learning_rate(small):
    """beta = 4 (the bound) diverges at the default rate, which alone was blamed."""
    train, _ = small
    with pytest.raises(TrainingDiverged) as err:
        mfcore.create_model("timesvd", factors=2, beta=4.0, seed=0).fit(train, epochs=2,
                                                                         verbose=0)
    assert "try a smaller learning rate (now 0.01) or a smaller beta (now 4;" in str(err.value)
    # beta <= 1, or no drift term: the learning rate alone, as for every other model
    assert mfcore.create_model("timesvd", beta=4.0,
                               without=("drift", "factor_drift")).divergence_hint() == ""
    assert mfcore.create_model("timesvd", beta=1.0).divergence_hint() == ""
    assert mfcore.create_model("mfb").divergence_hint() == ""
