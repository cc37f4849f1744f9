"""``mfcore compare``: the notebook's zoo in one run."""
from __future__ import annotations

import io
import os
import sys
import time

import click

from . import main
from ..bounds import MAX_FACTORS
from .options import (JOBS, REPEATS, check_grouplens_source, comma_entries, data_inputs,
                      data_source_options, grouplens_fold_names, grouplens_folds, int_list,
                      load_from_options, split_from_options)
from .outputs import check_output
from .train import fit_arguments, training_options


def _csv(ctx, param, value):
    names = comma_entries(value)
    if not names:
        raise click.BadParameter("give at least one model name, or 'all'")
    return names


def _int_csv(ctx, param, value):
    return int_list(value, 1, MAX_FACTORS)


def _same_destination(a, b) -> bool:
    """True when two streams write to the same terminal, file or pipe."""
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False  # not backed by a file descriptor (e.g. captured in memory)
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


@main.command()
@data_source_options
@click.option("--models", callback=_csv, default="all", show_default=True,
              help="Comma-separated model names, or 'all' (the notebook's seven; with "
                   "--optimizer mcmc the models it supports).")
@click.option("--factors", callback=_int_csv, default="10,50", show_default=True,
              help="Comma-separated embedding sizes k.")
@training_options
@click.option("--folds", default=None, metavar="FOLDS",
              help="Run on each of these GroupLens ml-100k folds (e.g. u1,u2,u3,u4,u5) and "
                   "report each model's test RMSE per fold (after the last epoch; with "
                   "--early-stopping, the epoch an inner split kept) and its mean +- std "
                   "(instead of --split; as mfcore cv, which it runs for every model).")
@click.option("--jobs", type=JOBS, default=1, show_default=True,
              help="With --folds: local worker processes that run the folds (the same "
                   "numbers for any count).")
@click.option("--repeats", type=REPEATS, default=1, show_default=True,
              help="Train each model with seeds SEED .. SEED+N-1 and report the mean curve.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--markdown", is_flag=True, help="Print Markdown tables on stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Draw the learning curves into this PNG (needs matplotlib).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr [default: when stderr is a terminal].")
@click.option("-q", "--quiet", is_flag=True, help="No per-epoch log on stderr.")
def compare(dataset, data, sep, header, models, factors, split, split_seed, train_fraction,
            epochs, batch_size, optimizer, lr, seed, shuffle, threads, patience, samples, burn_in,
            folds, jobs, repeats, as_json, markdown, plot_path, progress, quiet):
    """Train the notebook's models on one split and print its table, ranked.

    Each model is built as the notebook (and the Keras reference) defines it at k factors,
    e.g. mixed-bias at k has 10 dot-product factors and k bias factors.

    \b
    Examples:
      mfcore compare --dataset ml-100k --epochs 6
      mfcore compare --dataset ml-100k --shuffle once --repeats 3   # as the parity tests
      mfcore compare --dataset ml-100k --models mfb,mfbs,nn --factors 10 --markdown
      mfcore compare --dataset ml-100k --plot curves.png
      mfcore compare --dataset ml-100k --split u1 --optimizer mcmc --factors 10
      mfcore compare --dataset ml-100k --models svdpp,timesvdpp --factors 50 \\
          --folds u1,u2,u3,u4,u5
    """
    from ..compare import (NOTEBOOK_MODELS, compare as run_compare, format_json,
                           format_markdown, format_table, plot_curves,
                           check_configs, fit_keywords)
    from ..registry import MODELS

    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    fit_arguments(optimizer, epochs, batch_size, lr, shuffle, threads, patience, samples, burn_in)
    if models == ("all",):
        from ..models.bayes import SUPPORTED
        models = SUPPORTED if optimizer == "mcmc" else NOTEBOOK_MODELS
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise click.BadParameter(f"unknown model {unknown[0]!r}; choose from "
                                 f"{', '.join(MODELS)}", param_hint="--models")
    if plot_path:
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:
            raise click.UsageError("--plot needs matplotlib: pip install 'mfcore[plot]'")
        check_output(plot_path, "--plot", data_inputs(dataset, data, default_dataset="ml-1m"))
        ext = os.path.splitext(plot_path)[1].lstrip(".").lower()
        formats = FigureCanvasBase.get_supported_filetypes()
        if ext and ext not in formats:
            raise click.BadParameter(f"{plot_path}: matplotlib cannot write .{ext} files; use "
                                     f"one of {', '.join(sorted(formats))}",
                                     param_hint="--plot")
    if folds is not None:
        folds = grouplens_fold_names(folds)
        if split.lower() != "random":
            raise click.UsageError("give either --split or --folds, not both")
        if plot_path:
            raise click.UsageError("--plot draws one split's curves; it does not go with "
                                   "--folds")
        if repeats > 1:
            raise click.UsageError("--repeats does not go with --folds")
        if threads > 1:
            raise click.UsageError("--threads does not go with --folds: each fold is one "
                                   "single-threaded fit; run them side by side with --jobs")
        check_grouplens_source(dataset, data, default_dataset="ml-1m")
    elif jobs > 1:
        raise click.UsageError("--jobs goes with --folds")
    # every model's settings before any data is read or anything trains
    check_configs(models, factors, seed, optimizer=optimizer,
                  **fit_keywords(optimizer, epochs=epochs, batch_size=batch_size, lr=lr,
                                 shuffle=shuffle, threads=threads, early_stopping=patience,
                                 samples=samples, burn_in=burn_in))
    ratings = load_from_options(dataset, data, sep, header, default_dataset="ml-1m",
                                quiet=quiet)
    if not quiet:
        from .train import compile_notice
        compile_notice(["mf", "nn"])
    if folds:
        _compare_folds(ratings, dataset, folds, models, factors, as_json, markdown, quiet,
                       progress, jobs=jobs, epochs=epochs, batch_size=batch_size,
                       optimizer=optimizer, lr=lr, seed=seed, shuffle=shuffle,
                       early_stopping=patience, samples=samples, burn_in=burn_in)
        return
    train, val = split_from_options(ratings, dataset, split.lower(), train_fraction, split_seed)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    if not quiet:
        click.echo(f"{ratings.name}: {len(train):,} train / {len(val):,} validation ratings; "
                   f"{len(models)} models x k in {list(factors)}", err=True)
    t0 = time.perf_counter()
    results = run_compare(train, val, models=models, factors=factors, epochs=epochs,
                          batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed,
                          repeats=repeats, shuffle=shuffle, threads=threads,
                          early_stopping=patience, samples=samples, burn_in=burn_in, log=log,
                          progress=progress)
    wall = time.perf_counter() - t0
    if as_json:
        click.echo(format_json(results, dataset=ratings.name, n_train=len(train),
                               n_val=len(val), optimizer=optimizer, batch_size=batch_size,
                               shuffle=shuffle, repeats=repeats, wall_seconds=wall))
    elif markdown:
        click.echo(format_markdown(results))
    else:
        # the per-epoch curves once: in the table, unless the epoch log already went to
        # the same terminal, file or pipe (stderr and stdout being one destination)
        curves = quiet or not _same_destination(sys.stdout, sys.stderr)
        click.echo(format_table(results, curves=curves))
        click.echo(f"\nwall time {wall:.1f} s")
    if plot_path:
        plot_curves(results, plot_path)
        if not quiet:
            click.echo(f"learning curves written to {plot_path}", err=True)
    _exit_on_failures([(r.model, r.error) for r in results if r.error], len(results))


def _compare_folds(ratings, dataset, folds, models, factors, as_json, markdown, quiet,
                   progress, **fit):
    """``compare --folds``: every model on every fold; the per-fold and mean table."""
    import json

    from ..compare import compare_folds, format_folds
    data = grouplens_folds(ratings, dataset, folds)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    t0 = time.perf_counter()
    summaries = compare_folds(data, models=models, factors=factors, log=log,
                              progress=progress, **fit)
    wall = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"dataset": ratings.name, "folds": [f for f, _, _ in data],
                               "wall_seconds": wall,
                               "results": [s.as_dict() for s in summaries]}))
    else:
        click.echo(format_folds(summaries, markdown=markdown))
        if not markdown:
            click.echo(f"\nwall time {wall:.1f} s")
    _exit_on_failures([(f"{s.model} on {fold}", err) for s in summaries
                       for fold, err in s.errors.items()],
                      sum(len(s.folds) + len(s.errors) for s in summaries))


def _exit_on_failures(failures, runs):
    """Exit 1 with one line on stderr naming what failed and why, when anything did (the
    table on stdout marks them too)."""
    if failures:
        why = "; ".join(f"{what}: {str(err).splitlines()[0] if str(err) else '?'}"
                        for what, err in failures)
        click.echo(f"error: {len(failures)} of {runs} run(s) failed: {why}", err=True)
        raise SystemExit(1)
