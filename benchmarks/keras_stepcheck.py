"""Step-by-step check of mfcore against real Keras on MovieLens 100K (optional).

    python benchmarks/keras_stepcheck.py --mode steps  [--model mixed-interaction] [--factors 50]
    python benchmarks/keras_stepcheck.py --mode replay [--model mixed-interaction] [--factors 50]

Two checks, for one of the deterministic notebook models (``mf``, ``mfb``, ``mfbs``,
``linear``, ``mixed-interaction``; underscores are accepted too):

``--mode steps``
    The Keras model is built as ``../shared/reference/keras_ref.py`` builds it and the mfcore
    model with :func:`mfcore.compare.notebook_model`. mfcore's initial weights are copied
    into Keras (embedding rows at the raw ids, which is how the reference indexes its
    tables; Dense kernels transposed from mfcore's ``(out, in)`` to Keras' ``(in, out)``).
    Both then see the same batches of 64 in one fixed order (a seeded permutation,
    replayed every epoch unless ``--reshuffle``): Keras through ``train_on_batch`` with
    ``Adam(0.001)`` and ``mse``, mfcore through its public ``fit(..., shuffle="none")`` on
    the training set reordered with ``Ratings.subset``. Training stops after 1, 10, 100 and
    1000 steps and at each epoch's end to print: the loss on both sides (the last batch's
    at a step, the epoch's mean at an epoch's end), the validation MSE on both sides, the
    largest difference between the two sides' validation predictions, and the largest
    difference in each weight array. Same start, same batches: the two should stay within
    float32 rounding of each other, drifting slowly as rounding compounds.

``--mode replay``
    Keras 3 ``fit`` after ``keras.utils.set_random_seed(seed)`` shuffles once and replays
    that one permutation in every epoch. This mode records the order ``fit`` would use
    (through Keras' own epoch iterator, in the same seeded state as ``keras_ref.py``: seed,
    build, compile, then the iterator), says whether the epochs' permutations are identical,
    then trains mfcore from Keras' seeded initial weights on that order and prints its
    per-epoch figures beside the reference file's (``keras_ml100k.json`` for seed 1,
    ``keras_ml100k_init2.json`` for seed 2). They should agree to about 4 digits.

Dropout models (``nn``, ``mixed-bias``) draw different dropout masks in the two
libraries, so they can only be compared statistically (``mfcore compare --repeats``); they
are skipped here.

Needs TensorFlow with Keras 3 (``pip install tensorflow-cpu``); without it the script says
so and exits 0. Keras is imported only inside this script, never by mfcore. Data:
``ml-100k`` from ``$MFCORE_DATA_HOME``, else ``<repo>/../shared/data`` (``--data-home``);
the reference figures from ``<repo>/../shared/reference`` (``--reference-dir``).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: models whose training is deterministic given weights and batch order
SUPPORTED = ("mf", "mfb", "mfbs", "linear", "mixed-interaction")
#: models with dropout: their masks differ between the libraries
DROPOUT_MODELS = ("nn", "mixed-bias")
#: reference file per Keras initialisation seed (see ../shared/reference/README.md)
REFERENCE_FILES = {1: "keras_ml100k.json", 2: "keras_ml100k_init2.json"}
BATCH = 64
LR = 1e-3
SNAP_STEPS = (1, 10, 100, 1000)


# ---- Keras (imported on demand) ---------------------------------------------------------
def import_keras():
    """Keras 3 on TensorFlow, or None (after printing why) when it cannot be imported."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow  # noqa: F401  (the backend must be importable)
        import keras
    except ImportError:
        print("keras_stepcheck.py needs TensorFlow with Keras 3: pip install tensorflow-cpu")
        return None
    if int(keras.__version__.split(".")[0]) < 3:
        print(f"keras_stepcheck.py needs Keras 3 (found {keras.__version__}): "
              f"pip install tensorflow-cpu")
        return None
    return keras


def build_keras(keras, name, k, n_users, n_items):
    """The Keras reference model, written exactly as keras_ref.py writes it.

    Only the layer names are added (to find the weights). Layer *creation order* is kept,
    because Keras 3 draws each initializer's seed from Python's ``random`` when the layer
    object is made, so after ``set_random_seed(s)`` the initial weights equal the reference
    run's only if the layers are created in the same order; note that in
    ``Dense(...)(emb(...))`` the Dense layer is created before the Embedding.
    """
    L = keras.layers
    u = L.Input(shape=(1,))
    m = L.Input(shape=(1,))

    def emb(n, d, x, tag):
        return L.Embedding(input_dim=n, output_dim=d, name=tag)(x)

    if name == "mf":
        out = L.Flatten()(L.Dot(axes=2)([emb(n_users, k, u, "user_emb"),
                                         emb(n_items, k, m, "item_emb")]))
    elif name in ("mfb", "mfbs"):
        dot = L.Flatten()(L.Dot(axes=2)([emb(n_users, k, u, "user_emb"),
                                         emb(n_items, k, m, "item_emb")]))
        out = L.Flatten()(L.Add()([dot, L.Flatten()(emb(n_users, 1, u, "user_bias")),
                                   L.Flatten()(emb(n_items, 1, m, "item_bias"))]))
        if name == "mfbs":
            out = L.Lambda(lambda x: 5 * x)(L.Activation("sigmoid")(out))
    elif name == "linear":
        x = L.Flatten()(L.Concatenate()([emb(n_users, k, u, "user_emb"),
                                         emb(n_items, k, m, "item_emb")]))
        out = L.Dense(1, name="dense")(x)
    elif name == "mixed-interaction":
        ou = L.Dense(int(k * 0.75), name="user_tower")(emb(n_users, k, u, "user_emb"))
        om = L.Dense(int(k * 0.75), name="item_tower")(emb(n_items, k, m, "item_emb"))
        dot = L.Flatten()(L.Dot(axes=2)([ou, om]))
        out = L.Flatten()(L.Add()([dot, L.Flatten()(emb(n_users, 1, u, "user_bias")),
                                   L.Flatten()(emb(n_items, 1, m, "item_bias"))]))
        out = L.Lambda(lambda x: 5 * x)(L.Activation("sigmoid")(out))
    else:
        raise ValueError(name)
    model = keras.Model(inputs=[u, m], outputs=out)
    model.compile(optimizer=keras.optimizers.Adam(LR), loss="mse")
    return model


def record_fit_orders(keras, n, epochs):
    """The row order Keras 3 ``fit(x, y, batch_size=64, shuffle=True)`` feeds in each epoch.

    Drives the epoch iterator ``fit`` itself builds (a private Keras 3 class) over inputs
    that are the row numbers, so each batch reveals which rows it holds. Call it in the
    state ``fit`` would start from (after the seeded build and compile).
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import TFEpochIterator
    rows = np.arange(n, dtype=np.int64)
    it = TFEpochIterator(x=[rows, rows], y=rows.astype("float32"), batch_size=BATCH,
                         shuffle=True, distribute_strategy=tf.distribute.get_strategy(),
                         steps_per_execution=1)
    it.reset()
    orders = []
    for _ in range(epochs):
        got = []
        with it.catch_stop_iteration():
            for _begin, _end, iterator in it:
                got.append(np.asarray(next(iterator)[0][0]).reshape(-1))
        orders.append(np.concatenate(got))
    return np.stack(orders)


# ---- the weight correspondence ----------------------------------------------------------
def weight_map(model, name, k):
    """Each weight array as ``(short label, keras layer name, weight index, getter)``.

    ``getter(model)`` returns a *view* of mfcore's array in Keras' layout (embedding rows
    in mfcore's index order; Dense kernels ``(in, out)``), so it can be read or assigned.
    mfcore's layout: ``U[u] = [factors..., bias]``, ``I[i]`` likewise; ``theta`` holds each
    Dense layer as its ``(out, in)`` kernel flattened, then its bias, in the order of
    ``model.layers()`` (the user tower before the item tower).
    """
    entries = [("u_emb", "user_emb", 0, lambda mm: mm.U_[:, :k]),
               ("i_emb", "item_emb", 0, lambda mm: mm.I_[:, :k])]
    if name in ("mfb", "mfbs", "mixed-interaction"):
        entries += [("u_bias", "user_bias", 0, lambda mm: mm.U_[:, k:k + 1]),
                    ("i_bias", "item_bias", 0, lambda mm: mm.I_[:, k:k + 1])]
    # Keras layer name -> short label for the table
    dense_names = {"linear": {"dense": "dense"},
                   "mixed-interaction": {"user_tower": "u_tower", "item_tower": "i_tower"}}
    layers = model.layers() if name in dense_names else []
    off = 0
    for (lname, short), layer in zip(dense_names.get(name, {}).items(), layers):
        kind, nin, nout, _act, has_bias = layer
        assert kind == "dense" and has_bias, layer
        w0, b0 = off, off + nin * nout
        off = b0 + nout
        entries += [
            (f"{short}.W", lname, 0,
             lambda mm, w0=w0, nin=nin, nout=nout: mm.theta_[w0:w0 + nin * nout]
             .reshape(nout, nin).T),
            (f"{short}.b", lname, 1, lambda mm, b0=b0, nout=nout: mm.theta_[b0:b0 + nout])]
    if name in dense_names and off != model.theta_.size:
        raise RuntimeError(f"unexpected theta layout for {name}: {model.layers()}")
    return entries


def keras_array(km, layer, index, raw_ids):
    """A Keras weight; embedding tables restricted to the rows at ``raw_ids``."""
    w = km.get_layer(layer).get_weights()[index]
    return w[raw_ids] if layer.endswith(("_emb", "_bias")) else w


def copy_mf_to_keras(model, km, wmap, user_ids, item_ids):
    """Put mfcore's weights into Keras: rows at the raw ids (other rows keep Keras' init)."""
    for _label, layer, index, get in wmap:
        ws = km.get_layer(layer).get_weights()
        if layer.endswith(("_emb", "_bias")):
            ws[index][user_ids if layer.startswith("user") else item_ids] = get(model)
        else:
            ws[index] = np.array(get(model))
        km.get_layer(layer).set_weights(ws)


def copy_keras_to_mf(km, model, wmap, user_ids, item_ids):
    """Put Keras' weights into mfcore (the rows at mfcore's raw ids)."""
    for _label, layer, index, get in wmap:
        ids = user_ids if layer.startswith("user") else item_ids
        get(model)[...] = keras_array(km, layer, index, ids)


# ---- data ----------------------------------------------------------------------------------
def load_data(data_home):
    """ml-100k split as the reference splits it, plus the raw-id arrays Keras is fed."""
    from mfcore.data import load_dataset, random_split
    data = load_dataset("ml-100k", data_home=data_home, download=False)
    train, val = random_split(data, 0.8, 0)  # = default_rng(0).random(n) < 0.8, file order
    raw = {}
    for tag, part in (("tr", train), ("va", val)):
        raw[tag + "_u"] = np.asarray(part.user_ids[part.users], np.int64)
        raw[tag + "_i"] = np.asarray(part.item_ids[part.items], np.int64)
        raw[tag + "_y"] = np.asarray(part.ratings, np.float32)
    # Keras tables indexed by raw id: max id + 1 rows (944 and 1683 on ml-100k)
    n_users, n_items = int(data.user_ids.max()) + 1, int(data.item_ids.max()) + 1
    return train, val, raw, n_users, n_items


def mse(pred, y):
    return float(np.mean((np.asarray(pred, np.float64).reshape(-1) - y) ** 2))


# ---- --mode steps --------------------------------------------------------------------------
def run_steps(keras, a, name):
    from mfcore.compare import notebook_model
    train, val, raw, nu, nm = load_data(a.data_home)
    n = len(train)
    nb = -(-n // BATCH)
    model = notebook_model(name, a.factors, a.seed)
    model.fit(train, epochs=0, verbose=0, progress=False)  # builds the initial weights
    wmap = weight_map(model, name, a.factors)
    keras.utils.set_random_seed(a.seed)  # only the rows mfcore lacks (raw id 0) keep this
    km = build_keras(keras, name, a.factors, nu, nm)
    copy_mf_to_keras(model, km, wmap, train.user_ids, train.item_ids)

    va_x = [raw["va_u"], raw["va_i"]]
    labels = [w[0] for w in wmap]

    def compare(when, k_loss, m_loss):
        pk = km.predict(va_x, batch_size=8192, verbose=0).reshape(-1)
        # the model's raw output for every validation pair, as Keras gives it and as fit's
        # val_loss uses it: predict() would refuse the pairs whose user or item has no
        # training rating (34 on ml-100k; their rows stay at the shared initial values)
        pm = model._predict_indices(val.users, val.items)
        dw = [np.max(np.abs(keras_array(km, layer, idx,
                                        train.user_ids if layer.startswith("user")
                                        else train.item_ids) - get(model)))
              for _l, layer, idx, get in wmap]
        cells = [f"{when:<9}", f"{k_loss:>10.6f}" if k_loss is not None else f"{'-':>10}",
                 f"{m_loss:>10.6f}" if m_loss is not None else f"{'-':>10}",
                 f"{mse(pk, raw['va_y']):>9.5f}", f"{mse(pm, raw['va_y']):>9.5f}",
                 f"{np.max(np.abs(pk - pm)):>10.2e}"] + [f"{d:>9.2e}" for d in dw]
        print(" ".join(cells), flush=True)

    rng = np.random.default_rng(a.order_seed)
    perm = rng.permutation(n)
    print(f"{name}, k={a.factors}: mfcore init (seed {a.seed}) copied into Keras "
          f"{keras.__version__}; {n:,} training rows, {nb} batches of {BATCH} per epoch, one "
          f"fixed order (default_rng({a.order_seed}).permutation)"
          + (", new permutation every epoch" if a.reshuffle else ", replayed every epoch"))
    print("loss: the step's batch loss at 'step s', the epoch's mean loss at 'epoch e'; "
          "val: validation MSE; max|dpred|: largest difference of validation predictions; "
          "then the largest difference of each weight array")
    print(" ".join([f"{'after':<9}", f"{'keras loss':>10}", f"{'mf loss':>10}",
                    f"{'keras val':>9}", f"{'mf val':>9}", f"{'max|dpred|':>10}"]
                   + [f"{lab:>9}" for lab in labels]))
    compare("start", None, None)
    t0 = time.perf_counter()
    step = 0
    for e in range(a.epochs):
        if a.reshuffle and e > 0:
            perm = rng.permutation(n)
        epoch = train.subset(perm)  # mfcore: the rows in this epoch's order
        xu, xi, y = raw["tr_u"][perm], raw["tr_i"][perm], raw["tr_y"][perm]
        # cut the epoch into stretches of batches ending just before and at each snapshot
        # step, so that the batch ending at a snapshot is one fit call of its own
        cuts = {0, nb}
        for s in SNAP_STEPS:
            if step < s <= step + nb:
                cuts |= {s - 1 - step, s - step}
        cuts = sorted(cuts)
        k_sum = m_sum = 0.0
        for b0, b1 in zip(cuts[:-1], cuts[1:]):
            r0, r1 = b0 * BATCH, min(b1 * BATCH, n)
            for b in range(b0, b1):
                lo, hi = b * BATCH, min((b + 1) * BATCH, n)
                out = km.train_on_batch([xu[lo:hi].reshape(-1, 1), xi[lo:hi].reshape(-1, 1)],
                                        y[lo:hi])
                k_loss = float(out[0] if isinstance(out, (list, tuple)) else out)
                k_sum += k_loss * (hi - lo)
            h = model.fit(epoch.subset(np.arange(r0, r1)), epochs=1, batch_size=BATCH,
                          optimizer="adam", lr=LR, shuffle="none", verbose=0, progress=False)
            m_loss = h.loss[0]  # mean over the stretch's batches (one batch at a snapshot)
            m_sum += m_loss * (r1 - r0)
            step += b1 - b0
            if step in SNAP_STEPS:
                compare(f"step {step}", k_loss, m_loss)
        compare(f"epoch {e + 1}", k_sum / n, m_sum / n)
    print(f"({time.perf_counter() - t0:.0f} s)")


# ---- --mode replay -------------------------------------------------------------------------
def run_replay(keras, a, name):
    from mfcore.compare import notebook_model
    train, val, raw, nu, nm = load_data(a.data_home)
    n = len(train)
    # the reference's seeded state: set_random_seed, build, compile, then fit's iterator
    keras.utils.set_random_seed(a.seed)
    km = build_keras(keras, name, a.factors, nu, nm)
    orders = record_fit_orders(keras, n, a.epochs)
    perms = [bool(np.array_equal(np.sort(o), np.arange(n))) for o in orders]
    same = [bool(np.array_equal(orders[0], o)) for o in orders]
    print(f"Keras {keras.__version__} fit order after set_random_seed({a.seed}), "
          f"{a.epochs} epochs of {n:,} rows: each a permutation: {all(perms)}; "
          f"identical to epoch 1's: {same}")
    print(f"  epoch 1 starts with rows {orders[0][:8].tolist()}")
    print("  -> one permutation replayed every epoch" if all(same)
          else "  -> a new permutation every epoch")

    model = notebook_model(name, a.factors, a.seed)
    model.fit(train, epochs=0, verbose=0, progress=False)
    wmap = weight_map(model, name, a.factors)
    copy_keras_to_mf(km, model, wmap, train.user_ids, train.item_ids)
    kw = dict(batch_size=BATCH, optimizer="adam", lr=LR, shuffle="none", verbose=0,
              progress=False)
    if all(same):  # the common case: one fit on the training set in Keras' order
        h = model.fit(train.subset(orders[0]), val, epochs=a.epochs, **kw)
        loss, val_loss = h.loss, h.val_loss
    else:  # one fit per epoch, each on its own order
        loss, val_loss = [], []
        for o in orders:
            h = model.fit(train.subset(o), val, epochs=1, **kw)
            loss += h.loss
            val_loss += h.val_loss

    ref, ref_file = None, REFERENCE_FILES.get(a.seed)
    if ref_file and (Path(a.reference_dir) / ref_file).exists():
        key = f"{name.replace('-', '_')}/k={a.factors}"
        ref = json.load(open(Path(a.reference_dir) / ref_file)).get(key)
    print(f"mfcore {name}, k={a.factors}, from Keras' seed-{a.seed} weights on that order "
          f"(fit shuffle='none'), beside "
          + (f"{ref_file}" if ref else "no reference figures (seed 1 or 2 have them)"))
    print(f"{'epoch':>5} {'mf loss':>9} {'ref loss':>9} {'mf val_loss':>12} "
          f"{'ref val_loss':>12} {'|diff|':>8}")
    for e in range(len(val_loss)):
        rl = ref["loss"][e] if ref and e < len(ref["loss"]) else float("nan")
        rv = ref["val_loss"][e] if ref and e < len(ref["val_loss"]) else float("nan")
        print(f"{e + 1:>5} {loss[e]:>9.4f} {rl:>9.4f} {val_loss[e]:>12.4f} {rv:>12.4f} "
              f"{abs(val_loss[e] - rv):>8.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("steps", "replay"), required=True)
    p.add_argument("--model", default="mixed-interaction",
                   help=f"one of {', '.join(SUPPORTED)} (default mixed-interaction)")
    p.add_argument("--factors", type=int, default=50, help="k (default 50)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=None,
                   help="steps: mfcore's init seed (default 0); replay: Keras' "
                        "set_random_seed (default 1, the reference's; 2 for init2)")
    p.add_argument("--order-seed", type=int, default=0,
                   help="steps: seed of the fixed batch order")
    p.add_argument("--reshuffle", action="store_true",
                   help="steps: a new permutation every epoch instead of one replayed")
    p.add_argument("--data-home", default=os.environ.get("MFCORE_DATA_HOME")
                   or str(SHARED / "data"))
    p.add_argument("--reference-dir", default=str(SHARED / "reference"))
    a = p.parse_args(argv)
    name = a.model.replace("_", "-")
    if name in DROPOUT_MODELS:
        print(f"{a.model}: dropout masks differ between Keras and mfcore, so it matches only "
              f"statistically (mfcore compare --repeats); skipped. Deterministic models: "
              f"{', '.join(SUPPORTED)}")
        return 0
    if name not in SUPPORTED:
        p.error(f"--model must be one of {', '.join(SUPPORTED)}")
    if a.seed is None:
        a.seed = 0 if a.mode == "steps" else 1
    keras = import_keras()
    if keras is None:
        return 0
    (run_steps if a.mode == "steps" else run_replay)(keras, a, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
