"""Model classes by CLI name."""
from .base import RatingModel, load_model
from .mf import MF, MFB, MFBS
from .mixed import MixedBias, MixedInteraction
from .nn import NN, Linear, ResidualNN

MODELS = {cls.name: cls for cls in (MF, MFB, MFBS, Linear, NN, ResidualNN, MixedBias,
                                    MixedInteraction)}


def create_model(name, **params) -> RatingModel:
    """A model by its CLI name (``mf``, ``mfb``, ``mfbs`` ...) with hyper-parameters."""
    from ..errors import ModelError
    try:
        cls = MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
    return cls(**params)


__all__ = ["MODELS", "RatingModel", "create_model", "load_model", "MF", "MFB", "MFBS",
           "Linear", "NN", "ResidualNN", "MixedBias", "MixedInteraction"]
