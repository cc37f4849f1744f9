"""scikit-learn's estimator conventions, for every registered model."""
import numpy as np
import pytest

import mfcore
from mfcore.errors import ModelError
from mfcore.models import MODELS, create_model


@pytest.fixture(scope="module")
def small(ml100k):
    data = ml100k.subset(np.arange(6000))
    return mfcore.random_split(data, 0.8, seed=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_get_params_set_params_round_trip(name, small):
    train, val = small
    model = create_model(name, seed=5)
    params = model.get_params()
    assert model.get_params(deep=True) == params
    clone = type(model)(**params)
    assert clone.get_params() == params and repr(clone) == repr(model)
    assert model.set_params(**params) is model
    a = model.fit(train, val, epochs=1, verbose=0).val_mse
    b = clone.fit(train, val, epochs=1, verbose=0).val_mse
    assert a == b  # a model re-created from its parameters trains identically


def test_init_only_stores_and_set_params_checks():
    model = mfcore.MFB(factors=-3)  # stored as given: checked by fit and set_params
    assert model.factors == -3
    with pytest.raises(ModelError, match="factors"):
        mfcore.MFB().set_params(factors=0)
    m = mfcore.MFB(factors=4)
    with pytest.raises(ModelError, match="factors"):
        m.set_params(factors=0)
    assert m.factors == 4  # a rejected set_params changes nothing
    with pytest.raises(ModelError, match="no parameter 'depth'"):
        m.set_params(depth=3)


def test_changed_parameters_rebuild_at_the_next_fit(small):
    train, val = small
    m = mfcore.MFB(factors=4, seed=0)
    m.fit(train, val, epochs=1, verbose=0)
    assert m.U_.shape[1] == 5
    m.set_params(factors=6)
    m.fit(train, val, epochs=1, verbose=0)
    assert m.U_.shape[1] == 7 and m.epochs_trained_ == 1
    m.fit(train, val, epochs=1, verbose=0)  # same parameters: a warm restart
    assert m.epochs_trained_ == 2


def test_a_model_whose_parameters_changed_after_fit_is_not_saved(small, tmp_path):
    """The file recorded the new factors beside the fitted tables: load_model refused it."""
    from mfcore.errors import ModelError
    train, val = small
    m = mfcore.MFB(factors=4, seed=0)
    m.fit(train, val, epochs=1, verbose=0)
    m.set_params(factors=6)
    with pytest.raises(ModelError, match=r"changed since it was fitted \(factors 4 -> 6\); "
                                         r"its weights are still the fitted ones"):
        m.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    m.set_params(factors=4)      # set back: saves, and loads
    back = mfcore.load_model(m.save(tmp_path / "m.npz"))
    assert back.factors == 4
