"""Counter-based random numbers for compiled code: the same (seed, counters) always give
the same number, whatever order or chunking the work is done in."""
import numpy as np
from numba import njit

_MASK = (1 << 64) - 1


@njit(cache=True, inline="always")
def mix64(x):
    """SplitMix64 finaliser: a well-mixed uint64 from a uint64."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def uniform(seed, a, b, c):
    """A float64 in [0, 1) determined by (seed, a, b, c)."""
    x = mix64(np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(a + 1))
    x = mix64(x ^ (np.uint64(b) * np.uint64(0xD1B54A32D192ED03)))
    x = mix64(x ^ (np.uint64(c) * np.uint64(0x8CB92BA72F3D8DD7)))
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def shuffled_order(n, seed, epoch):
    """A permutation of ``range(n)`` (int32) for one epoch: Fisher-Yates driven by a
    xorshift generator seeded from (seed, epoch)."""
    order = np.arange(n, dtype=np.int32)
    s = mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch + 1))
    if s == 0:
        s = np.uint64(1)
    for i in range(n - 1, 0, -1):
        s ^= s << np.uint64(13)
        s ^= s >> np.uint64(7)
        s ^= s << np.uint64(17)
        j = np.int64((s >> np.uint64(11)) % np.uint64(i + 1))
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp
    return order
