"""Options shared by commands that read ratings: ``--dataset``, ``--data``, ``--sep``, ``--header``.

Kept import-light (no numba or pandas): the loaders are imported when a command runs.
"""
from __future__ import annotations

import click

from .. import bounds, registry

__all__ = ["BUILTIN_NAMES", "data_source_options", "load_from_options", "parse_sep_option",
           "data_inputs", "split_from_options", "finite", "SEED", "FACTORS", "EPOCHS",
           "BATCH", "PATIENCE", "REPEATS", "THREADS", "int_list", "grouplens_fold_names",
           "check_grouplens_source", "grouplens_folds"]

#: builtin data set names (from the registry)
BUILTIN_NAMES = registry.DATASETS


# ---- bounded numbers: every numeric option gets a range (usage error, exit 2) ----------
def _require_plain(kind, parse, what, value, param, ctx):
    """``kind.fail`` (a usage error) unless the text ``value`` passes ``parse``
    (:func:`mfcore.bounds.plain_int` or ``plain_float``); non-text values pass."""
    if isinstance(value, str):
        try:
            parse(value)
        except ValueError:
            kind.fail(f"{value!r} is not a plain {what}", param, ctx)


class IntRange(click.IntRange):
    """click's IntRange for plain ASCII integers only: ``int`` (and so click) also takes
    ``1_0`` and other scripts' digits (``١٠``)."""

    def convert(self, value, param, ctx):
        _require_plain(self, bounds.plain_int, "integer (ASCII digits, an optional sign)",
                       value, param, ctx)
        return super().convert(value, param, ctx)


class _Finite(click.FloatRange):
    """A FloatRange for plain ASCII numbers that also refuses NaN and infinities (click's
    lets NaN through, and ``float`` takes ``1_0``)."""

    name = "float"

    def convert(self, value, param, ctx):
        import math
        _require_plain(self, bounds.plain_float, "finite number (ASCII digits, sign, point, "
                       "exponent)", value, param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def finite(min=None, max=None, min_open=False, max_open=False):
    """A click type for a finite float within the given range."""
    return _Finite(min, max, min_open=min_open, max_open=max_open)


class _Threads(IntRange):
    """1 .. the threads Numba may use here (read when the option is used)."""

    def __init__(self):
        super().__init__(min=1)

    def convert(self, value, param, ctx):
        n = super().convert(value, param, ctx)
        if n > 1:
            import numba
            most = numba.config.NUMBA_NUM_THREADS
            if n > most:
                self.fail(f"{n} is more than the {most} threads Numba may use here", param, ctx)
        return n


SEED = IntRange(0, bounds.SEED_LIMIT - 1)
FACTORS = IntRange(1, bounds.MAX_FACTORS)
EPOCHS = IntRange(1, bounds.MAX_EPOCHS)
PATIENCE = IntRange(0, bounds.MAX_EPOCHS)
BATCH = IntRange(1, bounds.MAX_BATCH)
REPEATS = IntRange(1, bounds.MAX_REPEATS)
TRIALS = IntRange(1, bounds.MAX_TRIALS)
FOLDS = IntRange(2, bounds.MAX_FOLDS)
JOBS = IntRange(1, bounds.MAX_JOBS)
RETRIES = IntRange(0, bounds.MAX_RETRIES)
THREADS = _Threads()


def comma_entries(value) -> tuple:
    """``" a, b "`` -> ``("a", "b")``; a value of only commas and spaces -> ``()``. An empty
    entry among values (``"10,,50"``, ``"0.1,"``) is a usage error: a stray comma may stand
    for a value the user left out."""
    text = str(value)
    if not text.replace(",", "").strip():
        return ()
    entries = tuple(v.strip() for v in text.split(","))
    if "" in entries:
        raise click.BadParameter(f"{text!r} has an empty entry between its commas; "
                                 f"list the values as a,b,c")
    return entries


def int_list(value, lo, hi, example="10,50"):
    """Comma-separated integers, each in ``[lo, hi]``; click.BadParameter otherwise."""
    entries = comma_entries(value)
    try:
        vals = tuple(bounds.plain_int(v) for v in entries)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as {example}, "
                                 f"got {value!r}") from None
    if not vals:
        raise click.BadParameter(f"expected comma-separated integers such as {example}, "
                                 f"got {value!r}")
    bad = [v for v in vals if not lo <= v <= hi]
    if bad:
        raise click.BadParameter(f"{bad[0]} is not in the range {lo}..{hi:,}")
    return vals


def widths(values):
    """``--hidden`` widths: each in 1 .. MAX_WIDTH, at most MAX_LAYERS of them."""
    if len(values) > bounds.MAX_LAYERS:
        raise click.BadParameter(f"at most {bounds.MAX_LAYERS} hidden layers, got {len(values)}")
    bad = [w for w in values if not 1 <= w <= bounds.MAX_WIDTH]
    if bad:
        raise click.BadParameter(f"width {bad[0]} is not in the range 1..{bounds.MAX_WIDTH:,}")
    return values


def rates(values, text):
    """``--dropout`` rates: finite numbers (the model checks the range), one per layer."""
    import math
    if len(values) > bounds.MAX_LAYERS:
        raise click.BadParameter(f"at most {bounds.MAX_LAYERS} rates, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"expected finite numbers, got {text!r}")
    return values


def parse_sep_option(value):
    """``tab``/``\\t`` -> TAB, ``comma`` -> ``,``, ``::`` stays ``::``...; None stays None."""
    try:
        return registry.separator(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _sep_callback(ctx, param, value):
    return parse_sep_option(value)


def data_source_options(f):
    """Add ``--dataset NAME``, ``--data PATH``, ``--sep SEP`` and ``--header/--no-header``.

    The command receives ``dataset``, ``data``, ``sep`` (already a literal separator) and
    ``header`` (None = guess); pass them to :func:`load_from_options`.
    """
    options = [
        click.option("--dataset", type=click.Choice(BUILTIN_NAMES, case_sensitive=False),
                     default=None, help="Builtin MovieLens data set (downloaded once into the "
                     "data home, $MFCORE_DATA_HOME)."),
        click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
                     metavar="PATH", help="A delimited ratings file: user, item, rating"
                     "[, timestamp] columns."),
        click.option("--sep", default=None, callback=_sep_callback, metavar="SEP",
                     help="Separator of --data: tab, '\\t', '::', ',', ';', '|', space... "
                     "[default: guessed]"),
        click.option("--header/--no-header", default=None,
                     help="Whether --data starts with column names [default: guessed]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def load_from_options(dataset, data, sep, header, default_dataset=None, quiet=False):
    """The :class:`~mfcore.data.Ratings` the data-source options name.

    Exactly one of ``dataset`` / ``data`` (or ``default_dataset`` when neither is given);
    both, or neither without a default, is a usage error (exit 2). ``--sep``/``--header``
    only apply to ``--data``. Library errors (bad file, failed download) propagate as
    :class:`~mfcore.errors.MfcoreError` (one line, exit 1). ``quiet`` hides the download bar.
    """
    if dataset and data:
        raise click.UsageError("give either --dataset or --data, not both")
    if not dataset and not data:
        if default_dataset is None:
            raise click.UsageError("give --dataset NAME or --data PATH")
        dataset = default_dataset
    if dataset and (sep is not None or header is not None):
        raise click.UsageError("--sep and --header apply to --data files, not to --dataset")
    from ..data import load_dataset, load_file

    if data:
        return load_file(data, sep=parse_sep_option(sep), header=header)
    return load_dataset(dataset.lower(), progress=False if quiet else None)


def split_from_options(ratings, dataset, split, train_fraction, split_seed):
    """``(train, validation)`` of ``ratings`` by the ``--split`` protocol. For ``uK`` on the
    builtin ml-100k, GroupLens' own ``uK.base``/``uK.test`` are read when the data home
    holds them (:func:`mfcore.data.load_grouplens_fold`)."""
    from ..data import load_grouplens_fold, make_split
    if split.lower() in registry.SPLITS[2:] and (dataset or "").lower() == "ml-100k":
        return load_grouplens_fold(split, progress=False)
    return make_split(ratings, split, train_fraction=train_fraction, seed=split_seed)


def grouplens_fold_names(text, option="--folds") -> list:
    """``"u1,U3"`` -> ``["u1", "u3"]`` (``--folds`` of cv and compare); anything else is a
    usage error naming the bad entry."""
    names = [v.lower() for v in comma_entries(text)]
    bad = [n for n in names if n not in registry.SPLITS[2:]] or ([] if names else [text])
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a GroupLens fold; use u1 .. u5, "
                                 f"comma-separated", param_hint=option)
    if len(set(names)) < len(names):
        raise click.BadParameter(f"a fold is named twice in {text!r}", param_hint=option)
    return names


def check_grouplens_source(dataset, data, default_dataset=None):
    """GroupLens' folds are cut from MovieLens 100K's u.data: ``--dataset ml-100k``, or a
    ``--data`` copy of u.data (its row count is checked when the folds are cut). Called
    before anything is loaded."""
    name = dataset or (None if data else default_dataset)
    if name and name.lower() != "ml-100k":
        raise click.UsageError("GroupLens folds (u1 .. u5) exist for --dataset ml-100k only "
                               "(or a --data copy of its u.data)")


def grouplens_folds(ratings, dataset, names):
    """``[(name, train, test)]`` of GroupLens' folds ``names``, as ``--split uK`` cuts
    each (:func:`split_from_options`)."""
    return [(n, *split_from_options(ratings, dataset, n, 0.8, 0)) for n in names]


def data_inputs(dataset, data, default_dataset=None):
    """The files the data-source options read, as ``[(path, description)]`` (for the
    output checks of :mod:`mfcore.cli.outputs`)."""
    out = [(data, "the ratings file given with --data")] if data else []
    name = dataset or (None if data else default_dataset)
    if name:
        from .outputs import builtin_input_files
        out += builtin_input_files(name.lower())
    return out
