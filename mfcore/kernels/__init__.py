"""Forward and hand-derived backward passes, one module per model family.

Every kernel has the same signature, so one epoch loop (``engine.trainer``) serves them all
through :mod:`.dispatch`::

    forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                     GU, GI, gtheta, ws, seed, step, training) -> sum of squared errors
    predict(spec, fspec, U, I, theta, state, users, items, n, out, ws)

``U`` (n_users, du) and ``I`` (n_items, di) are the float32 embedding tables, ``theta`` the
flat float32 dense weights, ``state`` non-trainable float32 state (batch-norm moving
averages). ``users``/``items``/``y`` hold the batch's first ``n`` samples. Gradients of the
*mean* squared error over the batch are ADDED into ``GU[users[b]]``, ``GI[items[b]]`` and
``gtheta``. ``spec`` (int64) and ``fspec`` (float64) carry the model's hyper-parameters,
``ws`` is a float32 scratch buffer sized by the model class, ``seed``/``step`` make dropout
masks deterministic.
"""

#: Numba fastmath flags for the hot loops: let LLVM reassociate and fuse multiply-adds
#: (vectorised dot products) but keep NaN/inf semantics (divergence is detected) and exact
#: division and square roots (Keras' Adam arithmetic).
FAST = {"contract", "reassoc", "nsz"}
