"""Keras parity of the neural and mixed models: the Keras reference architectures
(``keras_ref.py``) on MovieLens 100K (seed-0 split, Adam 1e-3, batch 64, 6 epochs) against
Keras' own figures in ../shared/reference/.

The reference runs seeded Keras (``keras.utils.set_random_seed``), and seeded Keras 3
``fit`` replays ONE shuffled order in every epoch; the tests use ``shuffle="once"`` to
train under the same setting, and compare the mean of several seeds (see parity.py).
With a new order every epoch, mfcore's default, the k=50 ``nn`` and mixed models overfit
less than the reference: see ``test_order_replay_...``.
"""
import pytest

from mfcore.models import Linear, MixedBias, MixedInteraction, NN
from parity import assert_parity, load_reference, reference_result

MODELS = {"linear": Linear, "nn": NN, "mixed_bias": MixedBias,
          "mixed_interaction": MixedInteraction}
CASES = [(name, k) for name in MODELS for k in (10, 50)]


@pytest.mark.parametrize("name,k", CASES)
def test_val_loss_follows_keras(name, k, zoo_means, ml100k_split, shared_dir):
    key = f"{name}/k={k}"
    result, k1, k2 = reference_result(key, zoo_means, ml100k_split, shared_dir)
    reference_model = MODELS[name].keras_reference(k)
    assert {p: v for p, v in result.params.items() if p != "seed"} == \
        {p: (list(v) if isinstance(v, tuple) else v)
         for p, v in reference_model.get_params().items() if p != "seed"}
    assert_parity(key, result.history["val_loss"], k1, k2)


@pytest.mark.parametrize("name,k,layers", [
    ("linear", 10, [("dense", 20, 1, "linear", True)]),
    ("nn", 10, [("dense", 20, 15, "relu", True), ("dropout", 0.4),
                ("dense", 15, 1, "linear", True)]),
    ("nn", 50, [("dense", 100, 75, "relu", True), ("dropout", 0.4),
                ("dense", 75, 1, "linear", True)]),
    ("mixed_bias", 50, [("dense", 100, 75, "linear", True), ("dropout", 0.4),
                        ("dense", 75, 1, "linear", True)]),
    ("mixed_interaction", 50, [("dense", 50, 37, "linear", True)] * 2),
    ("mixed_interaction", 10, [("dense", 10, 7, "linear", True)] * 2),
])
def test_reference_architectures(name, k, layers):
    """keras_reference(k) builds exactly the layers of keras_ref.py."""
    model = MODELS[name].keras_reference(k)
    assert model.layers() == layers
    if name == "mixed_bias":
        assert (model.factors, model.bias_factors, model.sigmoid) == (10, k, True)


def test_order_replay_is_what_makes_the_k50_reference_overfit(ml100k_split, shared_dir):
    """Replaying one order (seeded Keras 3) memorises the batch sequence at k=50; a new order
    every epoch validates better. The reference's last-epoch val_loss sides with replay."""
    ref, _ = load_reference(shared_dir)
    train, val = ml100k_split
    last = {}
    for shuffle in ("once", "epoch"):
        model = MixedInteraction.keras_reference(50)
        last[shuffle] = model.fit(train, val, epochs=6, shuffle=shuffle, verbose=0).val_loss[-1]
    keras = ref["mixed_interaction/k=50"]["val_loss"][-1]
    assert last["epoch"] < last["once"] - 0.02
    assert abs(last["once"] - keras) < abs(last["epoch"] - keras)
