"""Epoch time of the neural and mixed models per optimizer on ~800k synthetic
ml-1m-shaped ratings (batch 64 for every optimizer).

    pytest benchmarks/test_bench_nn.py --benchmark-only \\
        --benchmark-columns=median,min,max --benchmark-sort=name

Target (DESIGN.md): ``nn``, 10 factors, Keras-faithful Adam, batch 64, 800k ratings
<= 1.5 s per epoch. The extra_info of each row holds ms/epoch and ratings/s.
"""
import pytest

from benchutil import epoch_benchmark
from mfcore.models import create_model

NAMES = ["linear", "nn", "residual", "mixed-bias", "mixed-interaction"]


@pytest.mark.parametrize("k", [10, 50])
@pytest.mark.parametrize("optimizer", ["adam", "sparse-adam", "sgd"])
@pytest.mark.parametrize("name", NAMES)
def test_epoch(benchmark, ml1m_like, name, optimizer, k):
    train, _ = ml1m_like
    benchmark.group = f"{name} epoch"
    model = create_model(name, factors=k, seed=0)
    epoch_benchmark(benchmark, model, train, rounds=3, optimizer=optimizer, batch_size=64)
