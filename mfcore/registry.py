"""The names mfcore knows, in one light module (no NumPy, no Numba): models and optimizers.

The command line builds its choices from here, so ``mfcore --help`` stays fast and no
list of names is typed twice. Model classes are imported on first use by
:mod:`mfcore.models`; optimizer codes are what the compiled engine branches on.
"""
from __future__ import annotations

from dataclasses import dataclass

#: CLI name -> "module:Class" of every model (the order is the order of ``mfcore --help``)
MODELS = {
    "mf": "mfcore.models.mf:MF",
    "mfb": "mfcore.models.mf:MFB",
    "mfbs": "mfcore.models.mf:MFBS",
    "linear": "mfcore.models.nn:Linear",
    "nn": "mfcore.models.nn:NN",
    "residual": "mfcore.models.nn:ResidualNN",
    "mixed-bias": "mfcore.models.mixed:MixedBias",
    "mixed-interaction": "mfcore.models.mixed:MixedInteraction",
    "baseline": "mfcore.models.baseline:Baseline",
    "svdpp": "mfcore.models.timesvdpp:SVDpp",
    "timesvd": "mfcore.models.timesvdpp:TimeSVD",
    "timesvdpp": "mfcore.models.timesvdpp:TimeSVDpp",
}

#: builtin data sets (their archives, checksums and layouts: mfcore.data.datasets)
DATASETS = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small")

#: train / validation protocols of the command line (mfcore.data.splits.make_split)
SPLITS = ("random", "temporal", "u1", "u2", "u3", "u4", "u5")

#: separator spellings -> the literal separator (anything else is taken literally)
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "t": "\t", "comma": ",", "semicolon": ";",
                   "pipe": "|", "space": " ", "colon2": "::", "doublecolon": "::",
                   "double-colon": "::"}


def separator(value):
    """The literal separator a user's spelling means (``tab``, ``\\t``, ``comma``, ``::``
    ...); None stays None (guess). ValueError for an empty one or one with a line break."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str) or value == "":
        raise ValueError(f"invalid separator {value!r}")
    key = value.strip().lower() if value.strip() else value
    if key in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[key]
    if "\n" in value or "\r" in value:
        raise ValueError(f"invalid separator {value!r}: it contains a line break")
    return value


#: how L2 is applied to a table: Keras' whole-matrix penalty, or per rating on the rows it touches
L2_MODES = ("keras", "per-sample")
#: embedding initialisations the models offer
EMBEDDING_INITS = ("uniform", "normal")
#: order of the training records per epoch (see mfcore.engine.trainer.fit)
SHUFFLES = ("epoch", "full", "once", "none")

#: optimizer codes of the compiled engine (:mod:`mfcore.engine.optim`)
SGD = 0
ADAM = 1
SPARSE_ADAM = 2
#: not an update rule: Gibbs sampling of the model as a Bayesian FM (mfcore.models.bayes)
MCMC = 3


@dataclass(frozen=True)
class Optimizer:
    """An update rule by name. ``code``: what the compiled step branches on;
    ``dense_tables``: step every row of every table at every step (the literal Keras
    update, a reference); ``default_lr``: learning rate when none is given."""

    name: str
    code: int
    default_lr: float
    summary: str
    dense_tables: bool = False

    @property
    def adam(self) -> bool:
        return self.code in (ADAM, SPARSE_ADAM)


OPTIMIZERS = {o.name: o for o in (
    Optimizer("adam", ADAM, 1e-3, "Keras' Adam with its dense semantics (rows a batch did not "
              "touch still move through their moments), computed lazily"),
    Optimizer("sparse-adam", SPARSE_ADAM, 1e-3, "lazy Adam: only the rows a batch touched "
              "move; faster, not Keras'"),
    Optimizer("sgd", SGD, 1e-2, "plain SGD; --batch-size 1 is classic per-sample SGD MF"),
    Optimizer("adam-dense", ADAM, 1e-3, "the literal step-by-step Keras Adam over whole "
              "tables: the same numbers as adam, much slower (a reference)", dense_tables=True),
    Optimizer("mcmc", MCMC, 0.0, "Gibbs sampling of the model as a Bayesian factorization "
              "machine (baseline, mfb, svdpp, timesvd, timesvdpp): no learning rate, a "
              "posterior spread for every prediction; --samples, --burn-in"),
)}


def optimizer(name) -> Optimizer:
    """The optimizer called ``name``; unknown names raise ModelError."""
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        from .errors import ModelError
        raise ModelError(f"unknown optimizer {name!r}; choose from "
                         f"{', '.join(OPTIMIZERS)}") from None
