"""Keras parity of the MF family: the notebook's settings on MovieLens 100K (seed-0 split,
Adam 1e-3, batch 64, 6 epochs) against Keras' own figures in ../shared/reference/."""
import pytest

from mfcore.models import create_model
from parity import assert_parity, reference_result


@pytest.mark.parametrize("k", [10, 50])
@pytest.mark.parametrize("name", ["mf", "mfb", "mfbs"])
def test_val_loss_follows_keras(name, k, zoo_means, ml100k_split, shared_dir):
    key = f"{name}/k={k}"
    result, k1, k2 = reference_result(key, zoo_means, ml100k_split, shared_dir)
    assert result.params["factors"] == k and len(result.runs) >= 2
    assert_parity(key, result.history["val_loss"], k1, k2)


# The notebook's own MovieLens 1M logs (its Model 1 to Model 5, "MF model with bias"
# section): validation loss per epoch. They run only where ml-1m is in the data home.
NOTEBOOK_ML1M = {
    "model1 mfb k=10": (dict(name="mfb", factors=10),
                        [0.8879, 0.8529, 0.8249, 0.8055, 0.7937, 0.7823]),
    "model2 mfb k=50": (dict(name="mfb", factors=50),
                        [0.8870, 0.8287, 0.7949, 0.7861, 0.7958, 0.8215]),
    "model3 mfb k=50 l2=1e-5": (dict(name="mfb", factors=50, l2=1e-5),
                                [1.6054, 0.9754, 0.8804, 0.8518, 0.8408, 0.8361]),
    "model4 mfbs k=10": (dict(name="mfbs", factors=10),
                         [0.8017, 0.7705, 0.7541, 0.7465, 0.7468, 0.7490]),
    "model5 mfbs k=50": (dict(name="mfbs", factors=50),
                         [0.7844, 0.7445, 0.7610, 0.7998, 0.8421, 0.8784]),
}


@pytest.mark.ml1m
@pytest.mark.parametrize("label", list(NOTEBOOK_ML1M))
def test_notebook_ml1m_figures(label, ml1m_split):
    params, target = NOTEBOOK_ML1M[label]
    params = dict(params)
    model = create_model(params.pop("name"), seed=0, **params)
    train, val = ml1m_split
    hist = model.fit(train, validation=val, epochs=6, verbose=0)
    # the notebook's split was unseeded and its Keras older: no second run to measure the
    # spread, so the floor of the parity rule applies
    bad = [(e + 1, a, b) for e, (a, b) in enumerate(zip(hist.val_loss, target))
           if e >= 2 and abs(a - b) > 0.03]
    assert bad == [], f"{label}: ours {hist.val_loss} vs notebook {target}"
