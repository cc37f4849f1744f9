"""The ranges mfcore accepts for seeds and sizes, in one light module (no NumPy).

The command line turns these into usage errors (exit 2) before any work starts; the
library checks the same ranges and raises :class:`~mfcore.errors.ModelError` (or
:class:`~mfcore.errors.DataError` for the data functions). Sizes within range can still
need more memory than there is: ``fit`` estimates it first (:mod:`mfcore.engine.memory`).
"""
from __future__ import annotations

#: seeds are integers with 0 <= seed < SEED_LIMIT (what NumPy's generators and the
#: compiled shuffles, which mix the seed as an unsigned 64-bit word, take without loss)
SEED_LIMIT = 2 ** 63
#: embedding sizes (factors, bias factors) and hidden-layer widths
MAX_FACTORS = 1 << 20
MAX_WIDTH = 1 << 20
#: time bins (timesvd/timesvdpp --bins, the NNs' time_bins): at most one per second of a
#: year is far more than any data set has days
MAX_BINS = 1 << 20
#: exponent of Koren's dev_u(t) = sign(t - t_u) |t - t_u|^beta (0.4 in the paper): above
#: this, a few years of days give values beyond float32
MAX_BETA = 4.0
#: L2 coefficients (l2, l2_bias, l2_time, l2_scale): far above any useful value (0.1 is
#: strong), below where the penalty alone overflows float32 and every weight is pinned to 0
MAX_L2 = 1000.0
#: hidden layers of an MLP
MAX_LAYERS = 64
#: epochs of one fit (and early-stopping patience)
MAX_EPOCHS = 1_000_000
#: ratings per batch (a batch larger than the training set is the training set)
MAX_BATCH = 2 ** 31 - 1
#: repeats of compare, timed epochs of bench
MAX_REPEATS = 10_000
#: trials of one search (random draws, or grid combinations), folds of a
#: cross-validation, worker processes of --jobs, reruns of a task whose worker died
MAX_TRIALS = 100_000
MAX_FOLDS = 1_000
MAX_JOBS = 1_024
MAX_RETRIES = 100


def is_seed(value) -> bool:
    """Whether ``value`` is an acceptable seed (an int, not a bool, in range)."""
    import numbers
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and 0 <= int(value) < SEED_LIMIT)


def check_seed(value, what="seed", error=None):
    """``int(value)`` when it is an acceptable seed, else raise ``error`` (default
    ModelError) saying the range."""
    if not is_seed(value):
        if error is None:
            from .errors import ModelError as error
        raise error(f"{what} must be an integer in [0, 2**63), got {value!r}")
    return int(value)


def check_bins(value, what="bins"):
    """``int(value)`` when it is an acceptable number of time bins, else ModelError."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 1 <= int(value) <= MAX_BINS:
        from .errors import ModelError
        raise ModelError(f"{what} must be an integer from 1 to {MAX_BINS:,}, got {value!r}")
    return int(value)
#: sweeps of the Gibbs sampler, burn-in or kept (optimizer "mcmc")
MAX_SWEEPS = 1_000_000


_PLAIN_FLOAT_CHARS = frozenset("0123456789+-.eE")


def plain_int(text) -> int:
    """``int(text)`` for plain ASCII integers only (an optional sign and digits: no ``_``
    separators, no other scripts' digits, both of which ``int`` takes); ValueError
    otherwise. Surrounding whitespace is ignored."""
    t = str(text).strip()
    if not (t.isascii() and t.lstrip("+-").isdigit() and len(t) - len(t.lstrip("+-")) <= 1):
        raise ValueError(f"not a plain integer: {t!r}")
    return int(t)


def plain_float(text) -> float:
    """``float(text)`` for plain ASCII numbers only (digits, sign, point, exponent);
    ValueError otherwise (``float`` also takes ``1_0``, other scripts' digits, inf, nan)."""
    t = str(text).strip()
    if not t or not set(t) <= _PLAIN_FLOAT_CHARS:
        raise ValueError(f"not a plain number: {t!r}")
    return float(t)
