"""The numbers of a fit must not depend on whether its compiled loops were compiled in
this process or loaded from Numba's disk cache.

They did, twice: a kernel function compiled on its own was called by its standalone copy
from a freshly compiled epoch loop and by the copy linked into the loop's object from a
cached one, and with fast-math the two compilations rounded differently (packed Adam's
row step; an svdpp loop with compile-time switches). CI starts with a cold cache, where
the workers of ``mfcore tune`` then disagreed with the process that started them. The
per-sample SGD loops now have their kernel loaded on its own first
(``mfcore.engine.sgd.load_kernel``), which is what lets svdpp keep that loop. Here one
process compiles the training paths (packed Adam, the grid of blocks, user runs) and a
second loads them; a second test does the same for the MLP kernel (dropout, batch norm, time
inputs) and the Gibbs sampler."""
import os
import subprocess
import sys

SCRIPT = """
import hashlib
from mfcore.data import random_split, synthetic_ratings
from mfcore.models import create_model
train, val = random_split(synthetic_ratings(20000, n_users=300, n_items=200, seed=1), 0.8,
                          seed=0)
for name, opt, kw in (("mfb", "sparse-adam", {}), ("mfb", "adam", {}), ("mfbs", "sgd", {}),
                      ("svdpp", "sgd", {}), ("timesvdpp", "sgd", {})):
    m = create_model(name, factors=10, seed=1, **kw)
    h = m.fit(train, val, epochs=2, optimizer=opt, batch_size=1 if opt == "sgd" else 64,
              verbose=0)
    print(name, opt, hashlib.sha1(m.tables_.arena.W.tobytes()).hexdigest(), repr(h.loss))
"""


#: the MLP kernel's paths and the sampler; predictions (with each rating's time) hashed too
SCRIPT_NN_MCMC = """
import hashlib
import numpy as np
from mfcore.data import random_split, synthetic_ratings
from mfcore.models import create_model
train, val = random_split(synthetic_ratings(20000, n_users=300, n_items=200, seed=1), 0.8,
                          seed=0)
for name, opt, kw in (("nn", "adam", {"batch_norm": True, "time_features": True}),
                      ("mixed-interaction", "sgd", {"time_features": True}),
                      ("residual", "sparse-adam", {}), ("baseline", "mcmc", {}),
                      ("timesvdpp", "mcmc", {"factors": 4})):
    m = create_model(name, seed=1, **kw)
    fit = {"epochs": 2, "batch_size": 32} if opt != "mcmc" else {}
    m.fit(train, val, optimizer=opt, verbose=0, **fit)
    p = m.predict(val.user_ids[val.users], val.item_ids[val.items],
                  timestamps=val.timestamps, unknown="mean")
    print(name, opt, hashlib.sha1(m.tables_.arena.W.tobytes()).hexdigest(),
          hashlib.sha1(np.asarray(m.theta_).tobytes()).hexdigest(),
          hashlib.sha1(p.tobytes()).hexdigest())
"""


def _twice(script, tmp_path):
    """``script``'s output from a process that compiles and from one that loads."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert any((tmp_path / "numba").rglob("*.nbc"))  # the second run loaded the cache
    return runs


def test_numbers_do_not_depend_on_numbas_disk_cache(tmp_path):
    runs = _twice(SCRIPT, tmp_path)
    assert len(runs[0].splitlines()) == 5
    assert runs[0] == runs[1]


def test_mlp_and_sampler_numbers_do_not_depend_on_numbas_disk_cache(tmp_path):
    runs = _twice(SCRIPT_NN_MCMC, tmp_path)
    assert len(runs[0].splitlines()) == 5
    assert runs[0] == runs[1]
