"""``mfcore train`` and ``mfcore gradcheck``."""
from __future__ import annotations

import json
import math
import os
import sys
import time

import click

from .. import bounds, registry
from . import main
from . import options as bounded
from .options import (comma_entries, data_inputs, data_source_options, load_from_options,
                      split_from_options)
from .outputs import check_output

#: model options of the command line -> the constructor keyword(s) they set (the first
#: one the model takes); only passed when given
MODEL_OPTIONS = {
    "factors": ("factors",), "l2": ("l2",), "l2_bias": ("l2_bias",), "l2_mode": ("l2_mode",),
    "sigmoid": ("sigmoid",), "init": ("init",), "init_scale": ("init_scale",),
    "hidden": ("hidden",), "dropout": ("dropout",), "input_dropout": ("input_dropout",),
    "batch_norm": ("batch_norm",), "activation": ("activation",),
    "bias_factors": ("bias_factors",), "implicit": ("implicit",), "flipped": ("flipped",),
    "bins": ("bins", "time_bins"), "beta": ("beta",), "without": ("without",),
    "time_features": ("time_features",), "time_inputs": ("time_inputs",),
    "time_factors": ("time_factors",),
}
#: the time terms of timesvd/timesvdpp that ``--without`` switches off (the same names as
#: mfcore.models.timesvdpp.TIME_TERMS, which this light module does not import)
TIME_TERMS = ("drift", "user_day", "item_bins", "scale", "factor_drift")


def _int_tuple(ctx, param, value):
    if value is None:
        return None
    try:
        widths = tuple(bounds.plain_int(v) for v in comma_entries(value))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 15,4, got {value!r}")
    return bounded.widths(widths)


def _float_or_tuple(ctx, param, value):
    if value is None:
        return None
    try:
        vals = tuple(bounds.plain_float(v) for v in comma_entries(value))
    except ValueError:
        raise click.BadParameter(f"expected a number or comma-separated numbers, got {value!r}")
    bounded.rates(vals, value)
    return vals[0] if len(vals) == 1 else vals


def _csv_tuple(ctx, param, value):
    if value is None:
        return None
    return comma_entries(value)


def _time_terms(ctx, param, value):
    if value is None:
        return None
    terms = tuple(v.replace("-", "_") for v in comma_entries(value))
    bad = [t for t in terms if t not in TIME_TERMS]
    if bad or not terms:
        raise click.BadParameter(f"expected time terms from {', '.join(TIME_TERMS)} "
                                 f"(comma-separated), got {value!r}")
    return terms


def model_options(f):
    """The options that choose and configure a model."""
    opts = [
        click.option("--model", "model_name", type=click.Choice(list(registry.MODELS)),
                     default="mfb", show_default=True, help="The model to train."),
        click.option("--factors", type=bounded.FACTORS, default=None,
                     help="Embedding size k [default: 10; svdpp/timesvd/timesvdpp 50, or 10 "
                          "under --optimizer mcmc; baseline has none]."),
        click.option("--l2", type=bounded.finite(min=0, max=bounds.MAX_L2), default=None,
                     help="L2 coefficient on the embeddings (notebook: 1e-3, 1e-5)."),
        click.option("--l2-mode", type=click.Choice(registry.L2_MODES), default=None,
                     help="keras: c*sum(W^2) over whole matrices every batch; per-sample: "
                          "only the rows a rating touches."),
        click.option("--sigmoid/--no-sigmoid", default=None,
                     help="5*sigmoid output (mfbs and mixed models have it on by default)."),
        click.option("--init", type=click.Choice(registry.EMBEDDING_INITS), default=None,
                     help="Embedding init: Keras' uniform(-s, s) or normal(0, s)."),
        click.option("--init-scale", type=bounded.finite(min=0, min_open=True), default=None,
                     help="s of --init (default 0.05)."),
        click.option("--hidden", callback=_int_tuple, default=None,
                     help="NN hidden widths, e.g. 15 or 15,4."),
        click.option("--dropout", callback=_float_or_tuple, default=None,
                     help="Dropout after each hidden layer: one rate or one per layer."),
        click.option("--input-dropout", type=bounded.finite(0, 1, max_open=True), default=None,
                     help="Dropout on the concatenated embeddings."),
        click.option("--batch-norm/--no-batch-norm", default=None,
                     help="Batch normalisation after each hidden layer."),
        click.option("--activation", default=None, help="Hidden activation (relu, linear ...)."),
        click.option("--bias-factors", type=bounded.FACTORS, default=None,
                     help="mixed-bias: size of the bias embedding vectors."),
        click.option("--l2-bias", type=bounded.finite(min=0, max=bounds.MAX_L2), default=None,
                     help="svdpp/timesvd/timesvdpp/baseline: L2 of the biases."),
        click.option("--implicit", type=click.Choice(("train", "all")), default=None,
                     help="svdpp/timesvdpp: N(u) from the training pairs (train, default) or "
                          "also from the pairs being validated (all: who rated what is "
                          "known, the Netflix-prize setting; it reveals which items are in "
                          "the test set)."),
        click.option("--flipped/--no-flipped", default=None,
                     help="svdpp/timesvdpp: also represent items by the users who rated "
                          "them (Rendle, Zhang & Koren 2019) [default: off; on under "
                          "--optimizer mcmc]."),
        click.option("--bins", type=bounded.IntRange(1, bounds.MAX_BINS), default=None,
                     help="Time bins over the training days [default: 30 for timesvd and "
                          "timesvdpp, 12 for the NNs' --time-features]."),
        click.option("--beta", type=bounded.finite(0, bounds.MAX_BETA), default=None,
                     help="timesvd/timesvdpp: exponent of dev_u(t) [default: 0.4]."),
        click.option("--without", callback=_time_terms, default=None, metavar="TERMS",
                     help="timesvd/timesvdpp: switch time terms off, for ablations: "
                          "comma-separated from " + ", ".join(TIME_TERMS) + " [default: none; "
                          "drift,factor_drift under --optimizer mcmc]."),
        click.option("--time-features/--no-time-features", default=None,
                     help="linear/nn/residual/mixed-*: time inputs to the MLP (the "
                          "rating's time-bin embedding; optionally its (user, day) "
                          "embedding and the user's drift dev_u(t)); see the README."),
        click.option("--time-inputs", callback=_csv_tuple, default=None, metavar="INPUTS",
                     help="Which time inputs --time-features adds: comma-separated from "
                          "bin, day, dev [default: bin]."),
        click.option("--time-factors", type=bounded.FACTORS, default=None,
                     help="Width of the time-bin embedding of --time-features [default: "
                          "that of the embeddings beside it]."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def split_options(f):
    """``--split``, ``--split-seed``, ``--train-fraction``: which part trains and which
    validates (shared by train, compare and tune)."""
    opts = [
        click.option("--split", type=click.Choice(registry.SPLITS, case_sensitive=False),
                     default="random", show_default=True,
                     help="Validation protocol: random (the notebook's rand < 0.8), temporal "
                          "(each user's latest ratings), u1 .. u5 (GroupLens' ml-100k folds: "
                          "the validation figures are then on the fold's test set)."),
        click.option("--split-seed", type=bounded.SEED, default=0, show_default=True,
                     help="Seed of the random 80/20 split (the notebook's rand < 0.8)."),
        click.option("--train-fraction", type=bounded.finite(0, 1, min_open=True,
                                                             max_open=True),
                     default=0.8, show_default=True),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def fit_options(f, threads=True, sampler=True):
    """Epochs, batch, optimizer, learning rate, seed, shuffling, early stopping (and
    ``--threads`` unless ``threads=False``: commands that run one fit per worker process
    keep every fit single-threaded)."""
    opts = [
        click.option("--epochs", type=bounded.EPOCHS, default=None,
                     help="[default: the model's; the notebook's models: 6]"),
        click.option("--batch-size", type=bounded.BATCH, default=None,
                     help="[default: the model's; the notebook's models: 64]"),
        click.option("--optimizer", type=click.Choice(list(registry.OPTIMIZERS)),
                     default=None,
                     help="[default: the model's; the notebook's models: adam] "
                          + "; ".join(f"{o.name}: {o.summary}"
                                      for o in registry.OPTIMIZERS.values()) + "."),
        click.option("--lr", type=bounded.finite(min=0, min_open=True), default=None,
                     help="Learning rate [default: 1e-3, sgd 1e-2]."),
        click.option("--seed", type=bounded.SEED, default=0, show_default=True,
                     help="Initialisation, shuffling and dropout seed."),
        click.option("--shuffle", type=click.Choice(registry.SHUFFLES),
                     default="epoch", show_default=True,
                     help="epoch: a new order every epoch (per-sample SGD: drawn block by "
                          "block); full: a new order of all ratings every epoch; once: one "
                          "order for all epochs, as seeded Keras 3 fit (the reference "
                          "figures); none: data order."),
    ]
    if threads:
        opts.append(click.option(
            "--threads", type=bounded.THREADS, default=1, show_default=True,
            help="Threads for per-sample SGD (--optimizer sgd --batch-size 1): the "
                 "same numbers for any count."))
    opts.append(click.option(
        "--early-stopping", "patience", type=bounded.PATIENCE, default=None,
        help="Stop after PATIENCE epochs without a better val MSE; keep the best."))
    if sampler:                     # --optimizer mcmc's own options
        opts.append(click.option(
            "--samples", type=bounded.IntRange(1, bounds.MAX_SWEEPS), default=None,
            help="--optimizer mcmc: sweeps kept after the burn-in; predictions average them "
                 "[default: 200]."))
        opts.append(click.option(
            "--burn-in", type=bounded.IntRange(0, bounds.MAX_SWEEPS), default=None,
            help="--optimizer mcmc: sweeps run and discarded first [default: 10]."))
    for opt in reversed(opts):
        f = opt(f)
    return f


def fit_arguments(optimizer, epochs, batch_size, lr, shuffle, threads, patience, samples,
                  burn_in) -> dict:
    """The keyword arguments of ``model.fit`` for the training options; a usage error for
    options that do not go with the optimizer (--lr with mcmc, --samples without it)."""
    if optimizer == "mcmc":
        given = [flag for flag, value, default in (
            ("--epochs", epochs, None), ("--batch-size", batch_size, None), ("--lr", lr, None),
            ("--early-stopping", patience, None), ("--shuffle", shuffle, "epoch"),
            ("--threads", threads, 1)) if value != default]
        if given:
            raise click.UsageError(f"{given[0]} does not apply to --optimizer mcmc: a sampler has "
                                   f"no learning rate, batches or epochs; it runs --burn-in + "
                                   f"--samples sweeps")
        return {"optimizer": "mcmc", "samples": samples, "burn_in": burn_in}
    if samples is not None or burn_in is not None:
        raise click.UsageError(f"{'--samples' if samples is not None else '--burn-in'} goes with "
                               f"--optimizer mcmc")
    return {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
            "shuffle": shuffle, "early_stopping": patience, "threads": threads}


def training_options(f):
    """Split, epochs, batch and optimizer options (shared by train and compare)."""
    return split_options(fit_options(f))


def compile_notice(kernels):
    """One line on stderr when the compiled kernels are not cached yet (the first run
    spends about 10 s compiling, which would otherwise look like a hang)."""
    from ..kernels import COMPILE_NOTICE, cache_is_cold
    if cache_is_cold(kernels):
        click.echo(COMPILE_NOTICE, err=True)


def model_params(model_name, **given) -> dict:
    """The constructor keywords of the model options given (None: not given); an option
    the model does not take is a usage error."""
    from ..models import MODELS
    accepted = set(MODELS[model_name]._param_names())
    params = {}
    for opt, value in given.items():
        if value is None:
            continue
        keys = [k for k in MODEL_OPTIONS[opt] if k in accepted]
        if not keys:
            raise click.UsageError(f"--{opt.replace('_', '-')} does not apply to model "
                                   f"{model_name}")
        params[keys[0]] = value
    inert = [f"--{opt.replace('_', '-')}" for opt in ("time_inputs", "time_factors")
             if given.get(opt) is not None]
    if inert and not given.get("time_features"):
        raise click.UsageError(f"{' and '.join(inert)}: used only with --time-features "
                               f"(the time inputs they shape); give it too")
    return params


def build_model(model_name, seed, **given):
    """A model from CLI options; options the model does not take are a usage error."""
    from ..errors import ModelError
    from ..models import MODELS
    cls = MODELS[model_name]
    params = {"seed": seed, **model_params(model_name, **given)}
    try:
        model = cls(**params)
        model._check()
    except ModelError as exc:
        raise click.UsageError(str(exc))
    return model


@main.command()
@data_source_options
@model_options
@training_options
@click.option("--save", "save_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Write the trained model here (.npz). An existing file "
              "is only replaced when it is an mfcore model (see --force); an input file "
              "never is.")
@click.option("--force", is_flag=True,
              help="Let --save replace an existing file that is not an mfcore model.")
@click.option("--keep-samples", type=bounded.IntRange(0, bounds.MAX_SWEEPS), default=None,
              metavar="N",
              help="--optimizer mcmc with --save: the file keeps the averaged predictor (the "
                   "same mean predictions) and only the last N samples whole, for predict "
                   "--std (0: no spread) [default: every sample whole].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
@click.option("-q", "--quiet", is_flag=True,
              help="Nothing on stderr but errors (no per-epoch log); the result line (or "
                   "the JSON) still goes to stdout.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also report parameter counts, the optimizer settings and the time spent "
                   "outside the epochs (data loading, JIT compilation or cache loading).")
def train(dataset, data, sep, header, model_name, split, split_seed, train_fraction, epochs,
          batch_size, optimizer, lr, seed, shuffle, threads, patience, samples, burn_in,
          save_path, force, keep_samples, as_json, progress, quiet, verbose, **model_opts):
    """Train one model on an 80/20 split and report per-epoch loss and val_loss.

    Defaults are the notebook's: MovieLens 1M, seed-0 80/20 split; for its models 6 epochs
    of Adam 1e-3 on batches of 64, for the others their own (see --help of --epochs). The
    per-epoch log and progress go to stderr; the result (one line with the
    final validation figures and where the model was saved, or the JSON with --json) goes
    to stdout, so `mfcore train ... > result.txt` keeps it.

    \b
    Examples:
      mfcore train --model mfb --factors 10
      mfcore train --dataset ml-100k --model mfbs --factors 50 --epochs 6
      mfcore train --data ratings.csv --sep , --model mf --optimizer sgd --batch-size 1
      mfcore train --dataset ml-100k --model mfb --l2 1e-5 --save mfb.npz --json
      mfcore train --dataset ml-100k --split u1 --model timesvdpp --flipped
      mfcore train --dataset ml-100k --split u1 --model timesvdpp --without scale,user_day
      mfcore train --dataset ml-100k --split temporal --model nn --time-features
      mfcore train --dataset ml-100k --split u1 --model mfb --factors 10 --optimizer mcmc
    """
    model = build_model(model_name, seed, **model_opts)
    if quiet and verbose:
        raise click.UsageError("choose one of --quiet and --verbose")
    if force and not save_path:
        raise click.UsageError("--force goes with --save")
    if keep_samples is not None and (optimizer != "mcmc" or not save_path):
        raise click.UsageError("--keep-samples goes with --optimizer mcmc and --save")
    fit_kw = fit_arguments(optimizer, epochs, batch_size, lr, shuffle, threads, patience, samples,
                           burn_in)
    if optimizer == "mcmc":
        from ..models.bayes import check_supported
        check_supported(model)  # before any data is read: one line, exit 1
    check_output(save_path, "--save", data_inputs(dataset, data, default_dataset="ml-1m"),
                 models_only=True, force=force)
    t_start = time.perf_counter()
    ratings = load_from_options(dataset, data, sep, header, default_dataset="ml-1m",
                                quiet=quiet)
    t_loaded = time.perf_counter()
    split = split.lower()
    train_set, val_set = split_from_options(ratings, dataset, split, train_fraction, split_seed)
    # absolute, so that `evaluate` finds the file from any folder; the content hash lets
    # it tell whether the file changed since (the split would then not be this one)
    model.data_source_ = {"dataset": dataset or (None if data else "ml-1m"),
                          "data": os.path.abspath(data) if data else None,
                          "sha256": ratings.source_sha256,
                          "sep": sep, "header": header, "split": split,
                          "split_seed": split_seed, "train_fraction": train_fraction}
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    if not quiet:
        click.echo(f"{model!r} on {ratings.name}: {len(train_set):,} train / "
                   f"{len(val_set):,} validation ratings", err=True)
        if optimizer != "mcmc":     # the sampler's own code is compiled once, apart
            compile_notice([model.kernel])
    t0 = time.perf_counter()
    from .guards import nothing_saved
    with nothing_saved(save_path):
        hist = model.fit(train_set, validation=val_set, **fit_kw, progress=progress,
                         verbose=0 if quiet else 1, log=log)
    wall = time.perf_counter() - t0
    if verbose:
        st = hist.settings
        post = getattr(model, "posterior_", None)
        if post is not None:
            click.echo(f"posterior: {post.n_samples} samples of {post.w.shape[1]:,} weights and "
                       f"{post.V.shape[1]:,} x {post.V.shape[2]} factors "
                       f"({post.nbytes / 1e6:.1f} MB as float32)", err=True)
            click.echo(f"optimizer mcmc, {st['burn_in'] + st['samples']} sweeps (burn-in "
                       f"{st['burn_in']}, {st['samples']} kept), seed {st['seed']}", err=True)
        else:
            sizes = {f"table {s.name}": s.rows * s.cols for s in model.tables_.specs}
            sizes["dense weights"] = model.theta_.size
            click.echo("parameters: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
                       + f" (total {sum(sizes.values()):,})", err=True)
            click.echo(f"optimizer {st['optimizer']}, lr {st['lr']:g}, batch {st['batch_size']}, "
                       f"shuffle {st['shuffle']}, seed {st['seed']}", err=True)
        overhead = wall - sum(hist.seconds)
        click.echo(f"data loading {t_loaded - t_start:.2f} s; training {wall:.2f} s, of which "
                   f"{overhead:.2f} s outside the epochs (set-up, JIT compilation or loading "
                   f"the compiled kernels from the cache)", err=True)
    if save_path:
        model.save(save_path, keep_samples)
    if as_json:
        out = {"model": model.name, "params": model.get_params(), "dataset": ratings.name,
               "split": split, "n_train": len(train_set), "n_val": len(val_set),
               "optimizer": hist.settings["optimizer"], "lr": hist.settings.get("lr"),
               "batch_size": hist.settings.get("batch_size"), "shuffle": shuffle,
               "epochs": len(hist.loss),
               "seconds": wall, "history": hist.as_dict(), "saved": save_path}
        click.echo(json.dumps(out, default=_json_default))
    else:
        click.echo(summary_line(model, ratings.name, hist, save_path))


def summary_line(model, data_name, hist, save_path=None) -> str:
    """The result of a training run in one line (stdout; the epoch log goes to stderr):
    the figures of the weights the model keeps, and where it was saved."""
    k = model._setting("factors") if hasattr(model, "factors") else None
    head = f"{model.name}" + (f" k={k}" if k is not None else "") + f" on {data_name}, " \
        f"{len(hist.loss)} epoch{'s' if len(hist.loss) != 1 else ''}: "
    if hist.settings.get("optimizer") == "mcmc":
        n = hist.n_averaged[-1] if getattr(hist, "n_averaged", None) else 0
        head = head.replace(" epoch", " mcmc sweep")
        if hist.val_mse and n:
            body = (f"val MSE {hist.val_mse[-1]:.4f}, RMSE {hist.val_rmse[-1]:.4f}, MAE "
                    f"{hist.val_mae[-1]:.4f} (posterior mean of {n} samples after a burn-in of "
                    f"{hist.settings['burn_in']})")
        else:
            body = f"training RMSE {math.sqrt(hist.loss[-1]):.4f} (no validation ratings)"
        return head + body + (f"; saved to {save_path}" if save_path else
                              "; not saved (use --save PATH)")
    if hist.val_mse:
        kept = hist.best_epoch if hist.stopped_early and hist.best_epoch else len(hist.val_mse)
        j = kept - 1
        body = (f"val MSE {hist.val_mse[j]:.4f}, RMSE {hist.val_rmse[j]:.4f}, "
                f"MAE {hist.val_mae[j]:.4f} at epoch {kept}")
        if hist.stopped_early:
            body += " (early stopping kept the best epoch)"
        elif hist.best_epoch and hist.best_epoch != kept:
            body += f" (best MSE {hist.val_mse[hist.best_epoch - 1]:.4f} at epoch {hist.best_epoch})"
    else:
        body = f"loss {hist.loss[-1]:.4f} (no validation ratings)" if hist.loss else "no epochs"
    tail = f"; saved to {save_path}" if save_path else "; not saved (use --save PATH)"
    return head + body + tail


def _json_default(obj):
    import numpy as np
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(type(obj).__name__)


@main.command()
@click.option("--model", "models", multiple=True, type=click.Choice(list(registry.MODELS)),
              help="Check only this model (repeatable). Default: every model.")
def gradcheck(models):
    """Check every hand-derived gradient against central finite differences (float64).

    Exits 0 only when every checked configuration passes.

    \b
    Examples:
      mfcore gradcheck
      mfcore gradcheck --model mfb --model nn
    """
    from ..gradcheck import run_all
    results = run_all(set(models) or None)
    failed = 0
    for r in results:
        opts = ", ".join(f"{k}={v}" for k, v in r.config.items() if k != "seed")
        status = "ok  " if r.ok else "FAIL"
        failed += not r.ok
        click.echo(f"{status} {r.model:<38} max rel err {r.max_rel_error:.2e} "
                   f"({r.checked} entries)  {opts}")
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)
