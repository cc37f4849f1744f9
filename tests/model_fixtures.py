"""Fixtures for the model tests (loaded from conftest.py)."""
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_dir():
    """The read-only ``shared`` folder beside the repo (data, reference figures)."""
    home = os.environ.get("MFCORE_DATA_HOME")
    for cand in ([Path(home).parent] if home else []) + [REPO.parent / "shared"]:
        if (cand / "reference" / "keras_ml100k.json").is_file():
            return cand
    msg = "../shared/reference/keras_ml100k.json not found (the Keras reference figures)"
    if _in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """The seed-0 80/20 split of u.data that the Keras reference figures use."""
    from mfcore.data import random_split
    return random_split(ml100k, train_fraction=0.8, seed=0)


@pytest.fixture(scope="session")
def ml1m_split():
    """ml-1m's seed-0 split when ml-1m is in the data home (it is not on CI machines)."""
    from mfcore.data import dataset_status, load_dataset, random_split
    if not dataset_status("ml-1m").get("present"):
        pytest.skip("MovieLens 1M is not in the data home (GroupLens cannot be reached here)")
    return random_split(load_dataset("ml-1m", download=False), train_fraction=0.8, seed=0)
