"""``mfcore cv`` and ``mfcore tune``: cross-validation and hyper-parameter search.

Kept import-light: NumPy, pandas, the models and Dask are imported when a command runs
(Dask only with ``--scheduler``).
"""
from __future__ import annotations

import json
import math
import os
import time

import click

from . import main
from .options import FOLDS, JOBS, RETRIES, TRIALS, check_grouplens_source, data_inputs, \
    data_source_options, finite, grouplens_fold_names, grouplens_folds, load_from_options, \
    split_from_options
from .outputs import check_output
from .train import _json_default, build_model, compile_notice, fit_options, model_options, \
    model_params, split_options


def _fit_options_single_threaded(f):
    return fit_options(f, threads=False, sampler=False)


def _execution_options(f):
    opts = [
        click.option("--jobs", type=JOBS, default=None,
                     help="Local worker processes [default: the number of cores; 1: all in "
                          "this process]."),
        click.option("--scheduler", envvar="MFCORE_DASK_SCHEDULER", default=None,
                     metavar="ADDRESS",
                     help="Run on a Dask distributed cluster instead (tcp://host:8786, "
                          "started with `dask scheduler` and `dask worker --nthreads 1`); "
                          "default $MFCORE_DASK_SCHEDULER. Needs pip install "
                          "'mfcore[dask]'."),
        click.option("--retries", type=RETRIES, default=2, show_default=True,
                     help="How often a task is run again after its worker died."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on "
                     "stdout."),
        click.option("--markdown", is_flag=True, help="Print a Markdown table on stdout."),
        click.option("--progress/--no-progress", default=None,
                     help="Progress bar on stderr [default: when stderr is a terminal]."),
        click.option("-q", "--quiet", is_flag=True, help="Nothing on stderr but errors."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _check_execution(jobs, scheduler, as_json, markdown):
    from ..parallel import DASK_MISSING
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    if scheduler:
        if jobs is not None:
            raise click.UsageError("--jobs runs local processes; with --scheduler the "
                                   "cluster's workers run the trials")
        try:
            import distributed  # noqa: F401
        except ImportError:
            from ..errors import MfcoreError
            raise MfcoreError(DASK_MISSING) from None


def _prestart(jobs, scheduler):
    """Start the local workers' fork server, so that it imports NumPy, Numba and the
    models while this process loads the data."""
    from ..parallel import default_jobs, prestart
    if not scheduler and (jobs or default_jobs()) > 1:
        prestart()


def _given_model_params(model_name, seed, options):
    """The model options given on the command line, as constructor keywords (checked)."""
    build_model(model_name, seed, **options)  # usage errors for options the model lacks
    return model_params(model_name, **options)


def _fit_kwargs(epochs, batch_size, optimizer, lr, shuffle, patience):
    """The fit options given (``--shuffle epoch`` is fit's own default: not a choice that
    a search must keep fixed)."""
    shuffle = None if shuffle == "epoch" else shuffle
    return {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size),
                              ("optimizer", optimizer), ("lr", lr), ("shuffle", shuffle),
                              ("early_stopping", patience)) if v is not None}


def _log(quiet):
    return (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))


def _clean(obj):
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _dumps(obj):
    return json.dumps(_clean(obj), default=_json_default)


# ---- cv --------------------------------------------------------------------------------
def _folds_arg(ctx, param, value):
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        k = int(text)
        if not 2 <= k <= FOLDS.max:
            raise click.BadParameter(f"need 2 to {FOLDS.max:,} folds, got {k}")
        return k
    try:
        return grouplens_fold_names(text)
    except click.BadParameter as exc:
        raise click.BadParameter(f"expected a number of folds (5) or GroupLens fold names "
                                 f"(u1,u2,u3,u4,u5): {exc.message}") from None


@main.command()
@data_source_options
@model_options
@_fit_options_single_threaded
@click.option("--folds", callback=_folds_arg, default="5", show_default=True,
              help="K for k-fold cross-validation of the whole data set (folds seeded by "
                   "--seed), or GroupLens' ml-100k folds: u1,u2,u3,u4,u5.")
@_execution_options
def cv(dataset, data, sep, header, model_name, epochs, batch_size, optimizer, lr, seed,
       shuffle, patience, folds, jobs, scheduler, retries, as_json, markdown, progress, quiet,
       **model_opts):
    """Cross-validate one model: RMSE and MAE per fold, their mean and standard deviation.

    Each fold trains on the other folds and is scored after its last epoch. With
    --early-stopping the fit watches an inner validation split (10% of the fold's
    training ratings), never the scored fold. The folds run in parallel (--jobs, or a Dask
    cluster with --scheduler) and give the same numbers either way.

    \b
    Examples:
      mfcore cv --dataset ml-100k --model mfb --folds 5 --epochs 6
      mfcore cv --dataset ml-100k --model svdpp --folds u1,u2,u3,u4,u5 --markdown
      mfcore cv --dataset ml-100k --model mfb --optimizer sgd --batch-size 1 --json
    """
    from ..tune import FoldSet, cross_validate, mean_std
    _check_execution(jobs, scheduler, as_json, markdown)
    model = build_model(model_name, seed, **model_opts)
    fit = _fit_kwargs(epochs, batch_size, optimizer, lr, shuffle, patience)
    log = _log(quiet)
    if isinstance(folds, list):
        check_grouplens_source(dataset, data, default_dataset="ml-1m")
    _prestart(jobs, scheduler)
    ratings = load_from_options(dataset, data, sep, header, default_dataset="ml-1m",
                                quiet=quiet)
    if isinstance(folds, list):
        # the same folds as --split uK (and compare --folds) cuts them
        pairs = grouplens_folds(ratings, dataset, folds)
        data_folds = FoldSet(pairs=[(tr, te) for _, tr, te in pairs], names=folds)
        log(f"{model!r} on {ratings.name}, GroupLens folds {','.join(folds)}")
    else:
        data_folds = ratings
        log(f"{model!r} on {ratings.name}: {folds}-fold cross-validation of "
            f"{len(ratings):,} ratings (seed {seed})")
    if not quiet:
        compile_notice([model.kernel])
    t0 = time.perf_counter()
    frame = cross_validate(model, data_folds, folds=folds, seed=seed, jobs=jobs,
                           scheduler=scheduler, retries=retries, progress=progress, **fit)
    wall = time.perf_counter() - t0
    ok = frame[frame["error"].isna()]
    # mean and sample standard deviation over the folds, as a search's trials report them
    summary = {m: mean_std(ok[m].tolist()) if len(ok) else (math.nan, math.nan)
               for m in ("rmse", "mae")}
    retried = frame.attrs["retried"]
    if as_json:
        click.echo(_dumps({"model": model.name, "params": model.get_params(), "fit": fit,
                           "folds": frame.to_dict("records"),
                           "mean": {m: s[0] for m, s in summary.items()},
                           "std": {m: s[1] for m, s in summary.items()},
                           "retried": retried, "backend": frame.attrs["backend"],
                           "wall_seconds": wall}))
    else:
        click.echo(_format_cv(frame, summary, markdown))
        click.echo(f"\nretried: {retried} of {len(frame)} folds (run again after their "
                   f"worker died); {frame.attrs['backend']}; wall time {wall:.1f} s")
    failed = frame[frame["error"].notna()]
    if len(failed):
        from ..errors import MfcoreError
        raise MfcoreError(f"fold {failed.iloc[0]['fold']}: {failed.iloc[0]['error']}")


def _format_cv(frame, summary, markdown):
    head = ["fold", "rmse", "mae", "epochs", "n_train", "n_test", "seconds"]
    rows = [[str(r.fold), _f(r.rmse), _f(r.mae), "-" if r.epochs is None or
             (isinstance(r.epochs, float) and math.isnan(r.epochs)) else str(int(r.epochs)),
             f"{r.n_train:,}", f"{r.n_test:,}", f"{r.seconds:.2f}"]
            for r in frame.itertuples()]
    rows.append(["mean ± std", f"{_f(summary['rmse'][0])} ± {_f(summary['rmse'][1])}",
                 f"{_f(summary['mae'][0])} ± {_f(summary['mae'][1])}", "", "", "",
                 f"{frame['seconds'].sum():.2f}"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in rows])


def _f(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


# ---- tune ------------------------------------------------------------------------------
@main.command()
@data_source_options
@split_options
@model_options
@_fit_options_single_threaded
@click.option("--grid", default=None, metavar="SPEC",
              help="Grid search: every combination of e.g. 'factors=10,20,50 lr=1e-3,3e-3'.")
@click.option("--random", "n_random", type=TRIALS, default=None,
              metavar="N", help="Random search: N trials drawn from --space.")
@click.option("--space", default=None, metavar="SPEC",
              help="Random search space, e.g. 'lr=log(1e-4,1e-1) l2=log(1e-6,1e-2) "
                   "factors=int(8,128)'; also uniform(a,b), logint(a,b), choice(a,b) or "
                   "a,b, and constants [default: the model's, see the README].")
@click.option("--folds", type=FOLDS, default=None,
              help="K-fold cross-validation of the training part [default: 3].")
@click.option("--holdout", type=finite(0, 1, min_open=True, max_open=True),
              default=None, help="Score on one held-out FRACTION of the training part "
                                 "instead of folds.")
@click.option("--metric", type=click.Choice(["rmse", "mae"]), default="rmse",
              show_default=True, help="What ranks the trials.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Refit the best on all the training part, report its "
                                 "figures on the held-out part of --split, save it here.")
@click.option("--force", is_flag=True,
              help="Let --save replace an existing file that is not an mfcore model.")
@_execution_options
def tune(dataset, data, sep, header, split, split_seed, train_fraction, model_name, epochs,
         batch_size, optimizer, lr, seed, shuffle, patience, grid, n_random, space, folds,
         holdout, metric, save_path, force, jobs, scheduler, retries, as_json, markdown,
         progress, quiet, **model_opts):
    """Search hyper-parameters by grid or random search; print the ranked trials.

    The search sees only the training part of --split: every trial is scored by k-fold
    cross-validation of it (--folds, default 3) or on one --holdout of it, and ranked by
    the mean --metric over the folds. Options given on the command line (--factors,
    --optimizer, --epochs ...) are held fixed; the grid or the space says what varies.
    With --early-stopping each fit stops on an inner 10% of its fold's training ratings.
    --save refits the best on the whole training part and reports it on the held-out
    part, which nothing in the search saw.

    The same --seed gives the same trials and the same numbers for any --jobs and on a
    Dask cluster (--scheduler): every draw comes from the seed and the trial's index.
    A worker that dies mid-search has its trials run again; the output says how many.

    \b
    Examples:
      mfcore tune --dataset ml-100k --model mfbs --random 8 --folds 3 --epochs 4
      mfcore tune --dataset ml-100k --model mfb --grid 'factors=10,20,50 lr=1e-3,3e-3'
      mfcore tune --dataset ml-100k --model mfb --optimizer sgd --batch-size 1 \\
          --epochs 60 --early-stopping 3 --random 32 --save best.npz
      mfcore tune --dataset ml-100k --model mfbs --random 64 --scheduler tcp://host:8786
    """
    from ..tune import SpaceError, format_markdown, format_space, format_table, search
    _check_execution(jobs, scheduler, as_json, markdown)
    if (grid is None) == (n_random is None):
        raise click.UsageError("give --grid SPEC or --random N")
    if space is not None and n_random is None:
        raise click.UsageError("--space goes with --random")
    if folds is not None and holdout is not None:
        raise click.UsageError("choose one of --folds and --holdout")
    if force and not save_path:
        raise click.UsageError("--force goes with --save")
    folds = 3 if folds is None and holdout is None else folds
    given = _given_model_params(model_name, seed, model_opts)
    fit = _fit_kwargs(epochs, batch_size, optimizer, lr, shuffle, patience)
    check_output(save_path, "--save", data_inputs(dataset, data, default_dataset="ml-1m"),
                 models_only=True, force=force)
    _prestart(jobs, scheduler)
    ratings = load_from_options(dataset, data, sep, header, default_dataset="ml-1m",
                                quiet=quiet)
    split = split.lower()
    train, test = split_from_options(ratings, dataset, split, train_fraction, split_seed)
    log = _log(quiet)
    if not quiet:
        from ..models import MODELS
        compile_notice([MODELS[model_name].kernel])
    scheme = f"{folds}-fold cross-validation" if holdout is None else f"a {holdout:g} holdout"
    try:
        result = _search(search, log, model_name, train, grid, n_random, space, folds,
                         holdout, metric, seed, given, jobs, scheduler, retries, progress,
                         fit, f"{ratings.name}: searching on the {len(train):,} training "
                         f"ratings of split {split}, by {scheme}")
    except SpaceError as exc:
        raise click.BadParameter(str(exc), param_hint="--grid" if grid else "--space")
    if not quiet and n_random is not None and space is None:
        log(f"space (the default): {format_space(result.space)}")
    out = result.as_dict()
    failed = [t for t in out["trials"] if t.get("error")]
    all_failed = bool(failed) and len(failed) == len(out["trials"])
    refit = save_path and not all_failed    # nothing to refit when every trial failed
    if refit:
        out["refit"] = _refit(result, train, test, ratings, dataset, data, sep, header, split,
                              split_seed, train_fraction, save_path, log)
    if as_json:
        click.echo(_dumps(out))
    else:
        click.echo(format_markdown(result) if markdown else format_table(result))
    if refit and not as_json:
        r = out["refit"]
        test_part = (f"; on the {r['n_test']:,} held-out ratings: RMSE {r['test_rmse']:.4f}, "
                     f"MAE {r['test_mae']:.4f}") if r["n_test"] else ""
        click.echo(f"refit: the best on all {r['n_train']:,} training ratings, "
                   f"{r['epochs']} epochs{test_part}; saved to {save_path}")
    if all_failed:
        first = str(failed[0]["error"]).splitlines()[0]
        click.echo(f"error: every trial failed ({len(failed)}); the first: {first}"
                   + ("; nothing was saved" if save_path else ""), err=True)
        raise SystemExit(1)


def _search(search, log, model_name, train, grid, n_random, space, folds, holdout, metric,
            seed, given, jobs, scheduler, retries, progress, fit, header):
    log(header + (f" (fixed: {', '.join(f'{k}={v}' for k, v in {**given, **fit}.items())})"
                  if given or fit else ""))
    return search(model_name, train, grid=grid, random=n_random, space=space, folds=folds,
                  holdout=holdout, metric=metric, seed=seed, params=given, jobs=jobs,
                  scheduler=scheduler, retries=retries, progress=progress,
                  callback=None, **fit)


def _refit(result, train, test, ratings, dataset, data, sep, header, split, split_seed,
           train_fraction, save_path, log):
    params, fit = result.best_settings()
    log(f"refitting the best on all {len(train):,} training ratings "
        f"({fit.get('epochs', 'the default')} epochs)")
    model = result.refit(train, test if len(test) else None)
    model.data_source_ = {"dataset": dataset or (None if data else "ml-1m"),
                          "data": os.path.abspath(data) if data else None,
                          "sha256": ratings.source_sha256, "sep": sep, "header": header,
                          "split": split, "split_seed": split_seed,
                          "train_fraction": train_fraction}
    model.save(save_path)
    out = {"path": save_path, "params": params, "fit": fit,
           "epochs": len(model.history_.loss), "n_train": len(train), "n_test": len(test),
           "test_rmse": None, "test_mae": None}
    if len(test):
        scores = model.evaluate(test)
        out.update(test_rmse=scores["rmse"], test_mae=scores["mae"])
    return out
