"""Model classes by CLI name (the names and where each class lives: :mod:`mfcore.registry`)."""
import importlib

from ..errors import ModelError
from ..registry import MODELS as _PATHS
from .base import RatingModel
from .baseline import Baseline
from .mf import MF, MFB, MFBS
from .mixed import MixedBias, MixedInteraction
from .nn import NN, Linear, ResidualNN
from .persist import load_model
from .timesvdpp import SVDpp, TimeSVD, TimeSVDpp


def _load(path):
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


#: CLI name -> model class, in the registry's order
MODELS = {name: _load(path) for name, path in _PATHS.items()}


def create_model(name, **params) -> RatingModel:
    """A model by its CLI name (``mf``, ``mfb``, ``mfbs`` ...) with hyper-parameters,
    checked (ModelError on an unknown name, parameter or value)."""
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
    accepted = cls._param_names()
    unknown = [p for p in params if p not in accepted]
    if unknown:
        raise ModelError(f"model {name} has no parameter {unknown[0]!r}; it takes "
                         f"{', '.join(accepted)}")
    model = cls(**params)
    model._check()
    return model


def has_factors(name) -> bool:
    """Whether model ``name`` has an embedding size (``factors``) to vary."""
    return "factors" in MODELS[name]._param_names()


def create_model_at(name, factors, **params) -> RatingModel:
    """Model ``name`` with ``factors`` embedding factors where it has them (a model without
    factors, such as ``baseline``, ignores the size)."""
    if has_factors(name):
        params["factors"] = factors
    return create_model(name, **params)


__all__ = ["MODELS", "RatingModel", "create_model", "create_model_at", "has_factors",
           "load_model", "MF", "MFB", "MFBS", "Linear", "NN", "ResidualNN", "MixedBias",
           "MixedInteraction", "Baseline", "SVDpp", "TimeSVD", "TimeSVDpp"]
