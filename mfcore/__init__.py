"""mfcore: the Keras notebook's rating-prediction zoo, trained with NumPy and Numba.

Library use::

    import mfcore
    data = mfcore.load_dataset("ml-100k")
    train, val = mfcore.random_split(data, train_fraction=0.8, seed=0)
    model = mfcore.MFB(factors=10)
    history = model.fit(train, validation=val, epochs=6)   # Adam 1e-3, batch 64
    model.evaluate(val)                 # {'mse': ..., 'rmse': ..., 'mae': ..., 'n': ...}
    model.predict([1, 2], [50, 172])    # raw ids in, ratings out
    model.recommend(1, n=10)            # DataFrame: item, score, title
    model.save("mfb.npz"); mfcore.load_model("mfb.npz")

Names are imported lazily so that ``import mfcore`` (and ``mfcore --help``) stays fast.
"""
__version__ = "0.2.0"

_LAZY = {
    "Ratings": "mfcore.data.ratings",
    "load_dataset": "mfcore.data", "load_file": "mfcore.data", "from_dataframe": "mfcore.data",
    "random_split": "mfcore.data", "kfold_split": "mfcore.data",
    "per_user_holdout_split": "mfcore.data", "temporal_split": "mfcore.data",
    "synthetic_ratings": "mfcore.data",
    "MODELS": "mfcore.models", "create_model": "mfcore.models", "load_model": "mfcore.models",
    "RatingModel": "mfcore.models",
    "MF": "mfcore.models", "MFB": "mfcore.models", "MFBS": "mfcore.models",
    "Linear": "mfcore.models", "NN": "mfcore.models", "ResidualNN": "mfcore.models",
    "MixedBias": "mfcore.models", "MixedInteraction": "mfcore.models",
    "Baseline": "mfcore.models", "SVDpp": "mfcore.models", "TimeSVD": "mfcore.models",
    "TimeSVDpp": "mfcore.models",
    "History": "mfcore.engine.trainer",
    "MfcoreError": "mfcore.errors", "DataError": "mfcore.errors", "ModelError": "mfcore.errors",
    "DownloadError": "mfcore.errors", "TrainingDiverged": "mfcore.errors",
    "MemoryLimitError": "mfcore.errors", "OutputError": "mfcore.errors",
    "UnknownIdsError": "mfcore.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mfcore' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
