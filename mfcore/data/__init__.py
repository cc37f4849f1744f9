"""Ratings data: the :class:`Ratings` container, loaders, splits and synthetic data.

    >>> from mfcore.data import load_dataset, random_split
    >>> data = load_dataset("ml-100k")              # doctest: +SKIP
    >>> train, val = random_split(data, 0.8, seed=0)  # doctest: +SKIP
"""
from .cache import data_home, user_cache_dir
from .datasets import (BUILTIN_DATASETS, DatasetSpec, dataset_status, download_dataset,
                       from_dataframe, load_dataset, load_file, load_grouplens_fold,
                       resolve_name)
from .parsers import DEFAULT_RATING_RANGE, normalize_sep, parse_ratings_file
from .ratings import Ratings
from .splits import (GROUPLENS_FOLDS, grouplens_fold, kfold_split, make_split,
                     per_user_holdout_split, per_user_temporal_split, random_split,
                     temporal_split)
from .synthetic import synthetic_ratings, write_ratings_dat

__all__ = [
    "Ratings", "load_dataset", "download_dataset", "load_file", "from_dataframe",
    "random_split", "kfold_split", "per_user_holdout_split", "temporal_split",
    "grouplens_fold", "per_user_temporal_split", "GROUPLENS_FOLDS", "load_grouplens_fold",
    "make_split",
    "synthetic_ratings", "write_ratings_dat", "BUILTIN_DATASETS", "DatasetSpec",
    "dataset_status", "resolve_name", "data_home", "user_cache_dir", "normalize_sep",
    "parse_ratings_file", "DEFAULT_RATING_RANGE",
]
