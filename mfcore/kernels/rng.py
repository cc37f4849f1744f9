"""Counter-based random numbers for compiled code: the same (seed, counters) always give
the same number, whatever order or chunking the work is done in."""
import numpy as np
from numba import njit

from . import CORE

@njit(**CORE, inline="always")
def mix64(x):
    """SplitMix64 finaliser: a well-mixed uint64 from a uint64."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(**CORE, inline="always")
def uniform(seed, a, b, c):
    """A float64 in [0, 1) determined by (seed, a, b, c)."""
    x = mix64(np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(a + 1))
    x = mix64(x ^ (np.uint64(b) * np.uint64(0xD1B54A32D192ED03)))
    x = mix64(x ^ (np.uint64(c) * np.uint64(0x8CB92BA72F3D8DD7)))
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**CORE, inline="always")
def epoch_state(seed, epoch):
    """The generator state that starts epoch ``epoch`` of a run seeded ``seed``."""
    s = mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch + 1))
    return s if s != 0 else np.uint64(1)


@njit(**CORE, inline="always")
def xorshift(s):
    """One xorshift64 step."""
    s ^= s << np.uint64(13)
    s ^= s >> np.uint64(7)
    s ^= s << np.uint64(17)
    return s
