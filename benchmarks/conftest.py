"""Shared benchmark data: a synthetic MovieLens-1M-shaped set (6,040 users, 3,706 items,
1,000,209 ratings, seed 0) split 80/20 with the notebook's split (about 800k training
ratings). Benchmarks run explicitly: ``pytest benchmarks --benchmark-only``."""
import pytest


@pytest.fixture(scope="session")
def ml1m_like():
    from mfcore.data import random_split, synthetic_ratings
    train, val = random_split(synthetic_ratings(seed=0), train_fraction=0.8, seed=0)
    return train, val
