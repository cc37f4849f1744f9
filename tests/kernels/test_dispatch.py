"""Kernel families: one compiled loop per family, chosen by the marker's type."""
import numpy as np
import pytest
from numba import typeof

from mfcore.kernels import dispatch


def test_each_family_has_its_own_type_and_unknown_names_raise():
    types = {typeof(dispatch.family(name)) for name in dispatch.FAMILIES}
    assert len(types) == len(dispatch.FAMILIES)
    with pytest.raises(ValueError, match="unknown kernel family"):
        dispatch.family("svd")
    for name, module in dispatch.FAMILIES.items():
        for fn in ("touch", "forward_backward", "predict"):
            assert callable(getattr(module, fn)), (name, fn)


def test_families_do_not_share_compiled_loops(ml100k_split):
    """Numba tells namedtuple arguments apart by their items only; the family marker must
    select the right kernel even after another family's loop was compiled in-process."""
    import mfcore
    train, val = ml100k_split
    small = train.subset(np.arange(5000))
    order = []
    for name in ("mfb", "nn", "baseline", "nn"):
        m = mfcore.create_model(name, seed=0)
        order.append((name, m.fit(small, val, epochs=1, verbose=0).val_mse[0]))
    assert order[1][1] == order[3][1]  # nn gives its own numbers, before or after others
    assert len({v for _, v in order[:3]}) == 3
