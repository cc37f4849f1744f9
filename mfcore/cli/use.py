"""``mfcore evaluate``, ``predict``, ``recommend`` and ``similar``: use a saved model.

Every command takes a model file written by ``mfcore train --save`` (or
:meth:`mfcore.models.RatingModel.save`). Ids on the command line and in files are raw ids,
as the data set wrote them; they are converted to the model's id type (integers for
MovieLens) for lookup and written back exactly as given.
"""
from __future__ import annotations

import json
import os

import click

from . import main
from .options import IntRange, data_source_options, load_from_options
from .outputs import check_output

_MODEL_FILE = click.Path(exists=True, dir_okay=False)


def _timestamp_callback(ctx, param, value):
    if value is None:
        return None
    from ..data.pairs import parse_timestamp
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _timestamp_option(help_text):
    return click.option("--timestamp", callback=_timestamp_callback, default=None,
                        metavar="WHEN", help=help_text + " Seconds since 1970-01-01 UTC or "
                        "an ISO date such as 1998-04-22 (time-aware models; others ignore "
                        "it). [default: each user's last training day]")


def _quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Nothing on stderr but errors.")(f)


def _json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout.")(f)


def _load(path):
    from ..models import load_model
    return load_model(path)


def _model_line(model, path):
    k = getattr(model, "factors", None)
    post = getattr(model, "posterior_", None)
    return (f"{path}: {model.name}" + (f", {k} factors" if k is not None else "")
            + (f", mcmc posterior of {post.n_samples} samples" if post is not None
               else f", {model.epochs_trained_} epoch(s)"))


# ---- raw ids -------------------------------------------------------------------------------
def _check_known(model, users, items, where=None):
    """Raise one ModelError naming the first pair whose user or item the model never saw
    in training (``where``: (path, line numbers) of the pairs)."""
    from ..errors import ModelError
    ok_u, ok_i = model._known_indices(*model._to_indices(users, items, "raw"))
    msg = model.unknown_pair_message(users, items, ok_u, ok_i, where)
    if msg is not None:
        raise ModelError(f"{msg}; pass --unknown nan or --unknown mean")


def _one_known_id(model, what, token):
    """The model's id for the raw id ``token`` (as typed), as a plain Python value; a
    ModelError naming ``token`` as typed when the model had no ratings for it."""
    from ..data.pairs import parse_ids
    from ..data.ratings import lookup_ids
    from ..errors import ModelError
    ids = model.user_ids_ if what == "user" else model.item_ids_
    counts = model.user_counts_ if what == "user" else model.item_counts_
    value = parse_ids([token], ids, what)[0]
    index = int(lookup_ids(ids, [value], what, -1)[0])
    if index < 0 or counts[index] == 0:
        extra = "; cannot recommend for it" if what == "user" else ""
        raise ModelError(f"{what} {token} had no ratings in the model's training data{extra}")
    return _plain(value)


# ---- evaluate ------------------------------------------------------------------------------
def _recorded_data_file(recorded, model_file):
    """Where the training data file recorded in a model is now. ``mfcore train`` records
    an absolute path; older model files hold the path as typed, relative to the folder
    ``train`` ran in, which is tried as given and then beside the model file."""
    from ..errors import DataError
    candidates = [recorded]
    if not os.path.isabs(recorded):
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(model_file)), recorded))
    for path in candidates:
        if os.path.exists(path):
            return path
    raise DataError(f"the training data file recorded in {model_file} is missing; pass "
                    f"--data PATH to evaluate on another file", path=recorded)


def _own_validation_split(model, model_file, quiet):
    """The validation split the model was trained beside, rebuilt from ``data_source_``.

    Returns ``(validation, info)``; ``info["data_changed"]`` is True when the data's
    SHA-256 differs from the one recorded at training (None when none was recorded)."""
    from ..errors import ModelError
    from ..data import load_dataset, load_file
    from .options import split_from_options
    src = model.data_source_ or {}
    if not (src.get("dataset") or src.get("data")):
        raise ModelError(f"{model_file}: the model file does not record its training data; "
                         f"pass --dataset NAME or --data PATH to evaluate on all their rows")
    if src.get("data"):
        path = _recorded_data_file(src["data"], model_file)
        ratings = load_file(path, sep=src.get("sep"), header=src.get("header"))
    else:
        ratings = load_dataset(src["dataset"], progress=False if quiet else None)
    fraction = src.get("train_fraction", 0.8)
    seed = src.get("split_seed", 0)
    split = src.get("split", "random")
    train, val = split_from_options(ratings, src.get("dataset"), split, fraction, seed)
    recorded = src.get("sha256")
    changed = None if recorded is None else recorded != ratings.source_sha256
    n_train = getattr(model, "n_train_", 0)
    if changed is None and n_train and n_train != len(train):
        changed = True
    if changed and not quiet:
        click.echo(f"warning: {ratings.name} changed since the model was trained ("
                   + ("its SHA-256 differs" if recorded is not None else
                      f"it now gives {len(train):,} training rows, not {n_train:,}")
                   + "): this validation split is not the one the model was validated on",
                   err=True)
    return val, {"data": ratings.name, "split": "validation", "protocol": split,
                 "split_seed": seed, "train_fraction": fraction, "data_changed": changed}


@main.command()
@click.argument("model_file", type=_MODEL_FILE)
@data_source_options
@click.option("--unknown", type=click.Choice(["raise", "skip", "mean"]), default="raise",
              show_default=True,
              help="Rows whose user or item had no training ratings: raise = score them "
                   "all as the model's own val_loss does (ids outside the model are an "
                   "error), skip = leave them out, mean = predict the training mean.")
@click.option("--clip", is_flag=True, help="Clip predictions to the training rating scale.")
@_timestamp_option("Score every row at this time instead of its own timestamp (rows "
                   "of data without timestamps are scored at the user's last training "
                   "day).")
@_json_option
@_quiet_option
def evaluate(model_file, dataset, data, sep, header, unknown, clip, timestamp, as_json,
             quiet):
    """MSE, RMSE and MAE of a saved model.

    Without --dataset/--data: on the model's own validation split, rebuilt from the data
    source saved in the model file (same data, same random split and seed), so the MSE
    equals the last epoch's validation MSE of training; a warning (and "data_changed" in
    the JSON) says when the data's content changed since training. With --dataset NAME or
    --data PATH: on all the rows of that data, matched to the model through raw ids.

    \b
    Examples:
      mfcore evaluate mfb.npz
      mfcore evaluate mfb.npz --dataset ml-100k --unknown skip --json
      mfcore evaluate mfb.npz --data new_ratings.csv --sep , --unknown mean
    """
    model = _load(model_file)
    if dataset or data:
        ratings = load_from_options(dataset, data, sep, header, quiet=quiet)
        info = {"data": ratings.name, "split": "all"}
    else:
        if sep is not None or header is not None:
            raise click.UsageError("--sep and --header apply to --data files")
        ratings, info = _own_validation_split(model, model_file, quiet)
    from ..errors import UnknownIdsError
    policy = {"raise": "model", "skip": "skip", "mean": "mean"}[unknown]
    try:
        res = model.evaluate(ratings, unknown=policy, clip=clip, timestamp=timestamp)
    except UnknownIdsError as exc:
        raise UnknownIdsError(str(exc).replace("pass unknown='skip' or 'mean'",
                                               "pass --unknown skip or --unknown mean")) from None
    if not quiet:
        click.echo(_model_line(model, model_file), err=True)
    if as_json:
        click.echo(json.dumps({"model": model.name, "model_file": model_file, **info,
                               "unknown": unknown, "clip": clip, **res}))
        return
    where = ((f"{info['data']}, validation split (seed {info['split_seed']})"
              if info["protocol"] == "random" else
              f"{info['data']}, {info['protocol']} validation split")
             if info["split"] == "validation" else f"{info['data']}, all rows")
    if info.get("data_changed"):
        where += " - CHANGED since training"
    click.echo(f"data  {where}")
    click.echo(f"MSE   {res['mse']:.6f}")
    click.echo(f"RMSE  {res['rmse']:.6f}")
    click.echo(f"MAE   {res['mae']:.6f}")
    click.echo(f"n     {res['n']}")
    if res["skipped"]:
        click.echo(f"skipped {res['skipped']} row(s) whose user or item had no training "
                   f"ratings")
    if res["mean_filled"]:
        click.echo(f"predicted the training mean for {res['mean_filled']} row(s) whose user "
                   f"or item had no training ratings")


# ---- predict -------------------------------------------------------------------------------
def _write_atomic(path, text):
    """Write ``text`` to ``path`` atomically (nothing half-written on error)."""
    from ..atomic import atomic_output
    from ..errors import OutputError
    try:
        with atomic_output(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise OutputError(f"--output {path}: cannot write it ({exc.strerror or exc})") from None


@main.command()
@click.argument("model_file", type=_MODEL_FILE)
@click.option("--user", default=None, help="Raw user id (with --item): one prediction.")
@click.option("--item", default=None, help="Raw item id (with --user).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="CSV of pairs: a header naming user and item (and "
              "optionally timestamp) columns, or two columns user,item without header.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write user,item,prediction here (atomically); '-' or "
              "none: stdout.")
@click.option("--sep", default=None, metavar="SEP",
              help="Separator of --input [default: guessed: , TAB ; | or space].")
@click.option("--unknown", type=click.Choice(["raise", "nan", "mean"]), default="raise",
              show_default=True, help="Pairs whose user or item had no training ratings: "
              "error, NaN, or the training mean rating.")
@click.option("--clip", is_flag=True, help="Clip predictions to the training rating scale.")
@click.option("--std", "with_std", is_flag=True,
              help="Also the posterior predictive standard deviation of each rating (models "
                   "trained with --optimizer mcmc): a column std, or 'PRED +- STD'.")
@_timestamp_option("When the ratings would be given (with --input: for rows without a "
                   "timestamp column).")
@_quiet_option
def predict(model_file, user, item, input_path, output_path, sep, unknown, clip, with_std,
            timestamp, quiet):
    """Predicted ratings of a saved model, for one pair or a file of pairs.

    Ids are raw ids, as in the data (integers for MovieLens); the output repeats them as
    written. The output file is written atomically: nothing is left half-written on error.

    \b
    Examples:
      mfcore predict mfb.npz --user 196 --item 242
      mfcore predict mfb.npz --input pairs.csv --output preds.csv --clip
      mfcore predict mfb.npz --input pairs.csv --unknown mean > preds.csv
      mfcore predict mcmc.npz --user 196 --item 242 --std
      mfcore predict timesvdpp.npz --user 196 --item 242 --timestamp 1998-04-01
    """
    import numpy as np

    from ..data.pairs import parse_ids, read_pairs

    from .options import parse_sep_option
    single = user is not None or item is not None
    if single and input_path:
        raise click.UsageError("give either --user and --item, or --input, not both")
    if single and (user is None or item is None):
        raise click.UsageError("--user and --item go together")
    if not single and not input_path:
        raise click.UsageError("give --user U --item I, or --input PAIRS.csv")
    if output_path and not input_path:
        raise click.UsageError("--output goes with --input")
    check_output(output_path, "--output", [(model_file, "the model file"),
                                           (input_path, "the pairs file given with --input")],
                 dash_for_stdout=True)
    sep = parse_sep_option(sep)
    model = _load(model_file)
    if with_std and getattr(model, "posterior_", None) is None:
        from ..errors import ModelError
        raise ModelError(f"{model_file}: --std needs a model trained with --optimizer mcmc (a "
                         f"posterior to take the spread of); this one has point estimates only")
    if single:
        u = parse_ids([user], model.user_ids_, "user")
        i = parse_ids([item], model.item_ids_, "item")
        if unknown == "raise":
            _check_known(model, u, i)
        if with_std:
            p, s = model.predict(u, i, timestamps=timestamp, unknown=unknown, clip=clip,
                                 return_std=True)
            click.echo(f"{str(np.float32(p[0]))} +- {str(np.float32(s[0]))}")
            return
        p = model.predict(u, i, timestamps=timestamp, unknown=unknown, clip=clip)[0]
        click.echo(str(np.float32(p)))
        return
    tok_u, tok_i, lines, stamps = read_pairs(input_path, sep, with_timestamps=True)
    if stamps is None:
        stamps = timestamp
    where = (input_path, lines)
    u = parse_ids(tok_u, model.user_ids_, "user", where)
    i = parse_ids(tok_i, model.item_ids_, "item", where)
    if unknown == "raise":
        _check_known(model, u, i, where)
    if with_std:
        pred, std = model.predict(u, i, timestamps=stamps, unknown=unknown, clip=clip,
                                  return_std=True)
        text = "user,item,prediction,std\n" + "".join(
            f"{a},{b},{p},{s}\n" for a, b, p, s in zip(tok_u, tok_i, pred.astype(str),
                                                       std.astype(str)))
    else:
        pred = model.predict(u, i, timestamps=stamps, unknown=unknown, clip=clip)
        text = "user,item,prediction\n" + "".join(
            f"{a},{b},{p}\n" for a, b, p in zip(tok_u, tok_i, pred.astype(str)))
    if output_path and output_path != "-":
        _write_atomic(output_path, text)
        if not quiet:
            click.echo(f"wrote {len(pred):,} predictions to {output_path}", err=True)
    else:
        click.echo(text, nl=False)


# ---- recommend / similar -------------------------------------------------------------------
def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _frame_rows(frame, value_col):
    import numpy as np
    rows = []
    for rec in frame.to_dict("records"):
        item = rec["item"]
        row = {"item": item.item() if isinstance(item, np.generic) else item,
               value_col: float(rec[value_col])}
        if "title" in rec:
            row["title"] = rec["title"]
        rows.append(row)
    return rows


def _print_items(rows, value_col):
    if not rows:
        click.echo("(no items)")
        return
    wi = max(4, *(len(str(r["item"])) for r in rows))
    click.echo(f"{'rank':>4}  {'item':>{wi}}  {value_col:>10}" +
               ("  title" if "title" in rows[0] else ""))
    for rank, r in enumerate(rows, 1):
        line = f"{rank:>4}  {str(r['item']):>{wi}}  {r[value_col]:>10.4f}"
        if "title" in r:
            line += f"  {r['title'] if r['title'] is not None else ''}"
        click.echo(line.rstrip())


@main.command()
@click.argument("model_file", type=_MODEL_FILE)
@click.option("--user", required=True, help="Raw user id.")
@click.option("-n", "n", type=IntRange(min=1), default=10, show_default=True,
              help="How many items.")
@click.option("--include-seen", is_flag=True,
              help="Also recommend items the user rated in training.")
@_timestamp_option("When the ratings would be given.")
@_json_option
@_quiet_option
def recommend(model_file, user, n, include_seen, timestamp, as_json, quiet):
    """Top-N items for a user by predicted rating (titles when the model has them).

    Items the user rated in training are left out unless --include-seen; items without
    training ratings are never recommended.

    \b
    Examples:
      mfcore recommend mfb.npz --user 196
      mfcore recommend mfb.npz --user 196 -n 20 --include-seen --json
    """
    model = _load(model_file)
    u = _one_known_id(model, "user", user)
    frame = model.recommend(u, n=n, timestamp=timestamp, exclude_seen=not include_seen)
    rows = _frame_rows(frame, "score")
    if as_json:
        click.echo(json.dumps({"user": u, "n": n, "include_seen": include_seen,
                               "items": rows}))
        return
    if not quiet:
        click.echo(_model_line(model, model_file), err=True)
    _print_items(rows, "score")


@main.command()
@click.argument("model_file", type=_MODEL_FILE)
@click.option("--item", required=True, help="Raw item id.")
@click.option("-n", "n", type=IntRange(min=1), default=10, show_default=True,
              help="How many items.")
@_json_option
@_quiet_option
def similar(model_file, item, n, as_json, quiet):
    """Items most similar to an item: cosine similarity of the item embeddings.

    \b
    Examples:
      mfcore similar mfb.npz --item 50
      mfcore similar mfb.npz --item 50 -n 5 --json
    """
    model = _load(model_file)
    i = _one_known_id(model, "item", item)
    frame = model.similar_items(i, n=n)
    rows = _frame_rows(frame, "similarity")
    if as_json:
        click.echo(json.dumps({"item": i, "n": n, "items": rows}))
        return
    if not quiet:
        click.echo(_model_line(model, model_file), err=True)
    _print_items(rows, "similarity")
