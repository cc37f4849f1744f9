"""Counter-based random numbers for compiled code: the same (seed, counters) always give
the same number, whatever order or chunking the work is done in."""
import numpy as np
from numba import njit

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


@njit(cache=True, inline="always")
def _epoch_state(seed, epoch):
    s = mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch + 1))
    return s if s != 0 else np.uint64(1)


@njit(cache=True, inline="always")
def _next(s):
    """One xorshift64 step."""
    s ^= s << np.uint64(13)
    s ^= s >> np.uint64(7)
    s ^= s << np.uint64(17)
    return s


@njit(cache=True)
def shuffle_into(users, items, y, seed, epoch, out_users, out_items, out_y):
    """Write a uniformly random permutation of the samples into the ``out_*`` arrays, fixed
    by (seed, epoch): Fisher-Yates on copies, so that the epoch loop then reads its samples
    sequentially instead of through an index.

    The index in ``[0, i]`` comes from Lemire's multiply-shift of the generator's high 32
    bits instead of a 64-bit modulo (five times cheaper here); its bias, below i / 2^32, is
    far under anything a training run could detect.
    """
    n = users.size
    for j in range(n):
        out_users[j] = users[j]
        out_items[j] = items[j]
        out_y[j] = y[j]
    s = _epoch_state(seed, epoch)
    for i in range(n - 1, 0, -1):
        s = _next(s)
        r = np.int64(((s >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
        tu = out_users[i]
        out_users[i] = out_users[r]
        out_users[r] = tu
        ti = out_items[i]
        out_items[i] = out_items[r]
        out_items[r] = ti
        ty = out_y[i]
        out_y[i] = out_y[r]
        out_y[r] = ty
