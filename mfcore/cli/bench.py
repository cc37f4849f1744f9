"""``mfcore bench``: the kernel speed table (a thin layer over :mod:`mfcore.bench`)."""
from __future__ import annotations

import json

import click

from .. import registry
from ..bounds import MAX_FACTORS
from . import main
from .options import BATCH, REPEATS, SEED, THREADS, IntRange, comma_entries, int_list

#: the most ratings the synthetic ml-1m-shaped set can hold (6,040 users x 3,706 items)
MAX_RATINGS = 6040 * 3706


def _names(ctx, param, value):
    if value is None:
        return None
    names = list(comma_entries(value))
    if not names:
        raise click.BadParameter(f"expected a comma-separated list, got {value!r}")
    return names


def _ints(ctx, param, value):
    if value is None:
        return None
    return list(int_list(value, 1, MAX_FACTORS))


@main.command()
@click.option("--ratings", "n_ratings", type=IntRange(1, MAX_RATINGS), default=1_000_209,
              show_default=True, help="Size of the synthetic ml-1m-shaped data set "
              "(6,040 users, 3,706 items); epochs run over its 80% training split.")
@click.option("--models", callback=_names, default=None, metavar="LIST",
              help="Comma-separated models, e.g. mf,mfb,mfbs [default: every model].")
@click.option("--optimizers", callback=_names, default="adam,sparse-adam,sgd",
              show_default=True, metavar="LIST",
              help="adam (Keras-faithful), sparse-adam (touched rows only), sgd.")
@click.option("--factors", callback=_ints, default="10,50", show_default=True,
              metavar="LIST", help="Embedding sizes.")
@click.option("--repeat", type=REPEATS, default=3, show_default=True,
              help="Timed epochs per row (the median is reported), after 1 warm-up epoch.")
@click.option("--batch-size", type=BATCH, default=None,
              help="Batch size of every row [default: 1 for sgd, 64 otherwise].")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the data, the split and the models.")
@click.option("--vs-keras", is_flag=True,
              help="Also time one Keras epoch (Adam, batch 64) of each model when "
                   "TensorFlow/Keras is importable; print keras ms and keras/ours.")
@click.option("--vs-peers", is_flag=True,
              help="Also time the peer libraries that implement the same model on the same "
                   "data (Cornac MF, Surprise SVD for per-sample SGD) when importable: "
                   "pip install 'mfcore[peers]'.")
@click.option("--threads", type=THREADS, default=1, show_default=True,
              help="Threads of the per-sample SGD rows (the same numbers for any count).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
def bench(n_ratings, models, optimizers, factors, repeat, batch_size, seed, vs_keras,
          vs_peers, threads, as_json, markdown, quiet):
    """Kernel speed: ms per epoch and ratings/s per model x optimizer x factors.

    Each row: the median of --repeat one-epoch fits after a warm-up epoch, on a synthetic
    MovieLens-1M-shaped set. JIT compile time is reported apart, per model, and the table
    says whether Numba's on-disk cache was warm.

    \b
    Examples:
      mfcore bench --models mf,mfb,mfbs --factors 10,50
      mfcore bench --ratings 100000 --optimizers sgd --repeat 5 --markdown
      mfcore bench --models mfb --factors 10 --vs-keras
      mfcore bench --models mfb --optimizers sgd --factors 10 --vs-peers --threads 2
      mfcore bench --ratings 20000 --models mf --factors 4 --repeat 1 --json
    """
    from ..bench import run_bench

    if as_json and markdown:
        raise click.UsageError("give either --json or --markdown, not both")
    for name in models or ():
        if name not in registry.MODELS:
            raise click.BadParameter(f"unknown model {name!r}; choose from "
                                     f"{', '.join(registry.MODELS)}", param_hint="--models")
    for opt in optimizers:
        if opt not in registry.OPTIMIZERS:
            raise click.BadParameter(f"unknown optimizer {opt!r}; choose from "
                                     f"{', '.join(registry.OPTIMIZERS)}",
                                     param_hint="--optimizers")
        if registry.optimizer(opt).code == registry.MCMC:
            raise click.BadParameter("mcmc samples instead of training epochs: time its sweeps "
                                     "with benchmarks/bench_mcmc.py", param_hint="--optimizers")
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    result = run_bench(n_ratings=n_ratings, models=models, optimizers=optimizers,
                       factors=factors, repeat=repeat, batch_size=batch_size, seed=seed,
                       vs_keras=vs_keras, vs_peers=vs_peers, threads=threads, log=log)
    if vs_keras and not result.keras_available:
        click.echo(result.keras, err=True)
    if vs_peers and not any((result.peers or {}).values()):
        click.echo("no peer library is importable here (cornac, surprise, myfm): "
                   "pip install 'mfcore[peers]'", err=True)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo(result.format_table(markdown=markdown))
