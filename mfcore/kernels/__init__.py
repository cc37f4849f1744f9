"""Forward and hand-derived backward passes, one module per model family.

Every kernel has the same signature, so one epoch loop (``engine.trainer``) serves them all
through :mod:`.dispatch`::

    forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                     GU, GI, gtheta, ws, seed, step, training) -> sum of squared errors
    predict(spec, fspec, U, I, theta, state, users, items, n, out, ws)

``U`` (n_users, du) and ``I`` (n_items, di) are the float32 embedding tables, ``theta`` the
flat float32 dense weights, ``state`` non-trainable float32 state (batch-norm moving
averages). ``users``/``items``/``y`` hold the batch's first ``n`` samples. Gradients of the
*mean* squared error over the batch are ADDED into ``GU[b]``, ``GI[b]`` (per sample, see
below) and ``gtheta``. ``spec`` (int64) and ``fspec`` (float64) carry the model's hyper-parameters,
``ws`` is a float32 scratch buffer sized by the model class, ``seed``/``step`` make dropout
masks deterministic.

Row gradients are per SAMPLE: ``GU[b]`` (shape (batch, du), zeroed by the caller) receives
the gradient with respect to ``U[users[b]]`` from sample ``b`` alone. The trainer sums them
per row and also keeps the per-row sum of their squares, which Keras' Adam uses as the
second-moment input for embedding rows (see :mod:`mfcore.engine.optim`).
"""

#: Numba fastmath flags for the hot loops: let LLVM reassociate and fuse multiply-adds
#: (vectorised dot products) but keep NaN/inf semantics (divergence is detected) and exact
#: division and square roots (Keras' Adam arithmetic).
FAST = {"contract", "reassoc", "nsz"}

#: Options of every compiled function on the training and prediction hot path:
#:
#: - cached on disk;
#: - without Numba's reference counting (``_nrt=False``): those functions never allocate;
#:   every array reaches them borrowed from Python, which owns it. With reference counting,
#:   reading an array out of a namedtuple (``T.W``, ``K.mark``) inside a loop costs two
#:   atomic updates per iteration and a call costs two per array argument: measured, the
#:   touched-row bookkeeping alone ran 16 times slower;
#: - NumPy's error model: a float division by zero gives inf or NaN (which the trainer's
#:   divergence check reports) instead of raising. Python's model tests every divisor,
#:   and that branch keeps LLVM from vectorising the Adam update (sqrt and divide).
CORE = {"cache": True, "_nrt": False, "error_model": "numpy"}


def _isolate_numba_cache():
    """Key Numba's on-disk cache on the sources of the compiled core.

    Numba invalidates a cached function when ITS file changes, not when a function it
    inlines from another file does (``dispatch`` inlines every kernel, ``trainer`` inlines
    ``dispatch`` and ``optim``), so an edited kernel could keep running its old machine code.
    Unless ``NUMBA_CACHE_DIR`` is set, the cache of the kernels and engine goes to a folder
    named by a hash of their sources; any edit starts a fresh cache.
    """
    import hashlib
    import os

    import numba

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    engine = os.path.join(os.path.dirname(here), "engine")
    digest = hashlib.sha256()
    for folder in (here, engine):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as fh:
                    digest.update(name.encode() + b"\0" + fh.read())
    numba.config.CACHE_DIR = os.path.join(here, "__pycache__", "numba-" + digest.hexdigest()[:16])


_isolate_numba_cache()


def cache_is_cold(kernel_modules=()) -> bool:
    """Whether Numba's on-disk cache lacks the compiled engine loop or one of the given
    kernel modules (``"mf"``, ``"nn"`` ...): the next fit then compiles first (about 10 s).
    A guess from the cache's index files, for a one-line notice, never for behaviour."""
    import os

    import numba

    folder = numba.config.CACHE_DIR
    try:
        names = [name for _, _, files in os.walk(folder) for name in files
                 if name.endswith(".nbi")]
    except OSError:
        return True
    wanted = ["loop."] + [f"{m}." for m in kernel_modules]
    return not all(any(n.startswith(w) for n in names) for w in wanted)


COMPILE_NOTICE = "compiling kernels (first run only, ~10 s)..."
