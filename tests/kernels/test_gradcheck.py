"""Every hand-derived gradient against central finite differences (mfcore.gradcheck)."""
import pytest

from mfcore import gradcheck
from mfcore.kernels import mlp
from mfcore.models import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients(name):
    results = gradcheck.run_all([name])
    assert results
    bad = [(r.model, r.config, r.max_rel_error) for r in results if not r.ok]
    assert bad == []


def test_every_option_is_gradchecked():
    configs = [p for n, p in gradcheck.gradcheck_configs()]
    assert {n for n, _ in gradcheck.gradcheck_configs()} == set(MODELS)
    assert any(p.get("batch_norm") for p in configs)
    assert any(p.get("input_dropout") for p in configs)
    assert any(p.get("l2") and p.get("l2_mode") == "keras" for p in configs)
    assert any(p.get("l2") and p.get("l2_mode") == "per-sample" for p in configs)
    acts = {p.get("activation") for p in configs}
    assert set(mlp.ACTIVATIONS) <= acts | {"relu", "linear"}
