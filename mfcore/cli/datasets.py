"""``mfcore datasets``: list, describe and download ratings data sets."""
from __future__ import annotations

import datetime as _dt
import json
import math

import click

from ..progress import format_size
from . import main
from .options import BUILTIN_NAMES, parse_sep_option


def _size(n):
    return "-" if n is None else format_size(n)


def _date(ts):
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(int(ts), tz=_dt.timezone.utc).strftime("%Y-%m-%d")


@main.group()
def datasets():
    """List, describe and download ratings data sets.

    Builtin sets live in the data home: $MFCORE_DATA_HOME, else the user cache folder
    (~/.cache/mfcore on Linux).

    \b
    Examples:
      mfcore datasets list
      mfcore datasets info ml-100k
      mfcore datasets download ml-1m
    """


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
def list_cmd(as_json):
    """Builtin data sets, whether each is present locally, and its size on disk.

    \b
    Examples:
      mfcore datasets list
      MFCORE_DATA_HOME=/data/movielens mfcore datasets list --json
    """
    from ..data import data_home, dataset_status

    rows = [dataset_status(name) for name in BUILTIN_NAMES]
    if as_json:
        click.echo(json.dumps({"data_home": str(data_home()), "datasets": rows}, indent=2))
        return
    click.echo(f"data home: {data_home()}")
    width = max(len(n) for n in BUILTIN_NAMES)
    for row in rows:
        state = {"folder": "present", "zip": "zip only"}.get(row["kind"], "missing")
        click.echo(f"  {row['name']:<{width}}  {state:<8}  {_size(row['size']):>9}  "
                   f"{row['description']}")


@datasets.command("info")
@click.argument("name", required=False, type=click.Choice(BUILTIN_NAMES, case_sensitive=False))
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="PATH", help="Describe this delimited ratings file instead.")
@click.option("--sep", default=None, metavar="SEP",
              help="Separator of --data: tab, '\\t', '::', ',', ... [default: guessed]")
@click.option("--header/--no-header", default=None,
              help="Whether --data starts with column names [default: guessed].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def info_cmd(name, data, sep, header, as_json):
    """Ratings, users, items, rating scale, density and time range of a data set.

    NAME is a builtin data set (downloaded first if needed); --data describes any file.

    \b
    Examples:
      mfcore datasets info ml-100k
      mfcore datasets info --data ratings.dat --sep ::
      mfcore datasets info --data ratings.csv --sep , --header --json
    """
    from .options import load_from_options

    if name and data:
        raise click.UsageError("give either NAME or --data, not both")
    if not name and not data:
        raise click.UsageError("give a data set NAME or --data PATH")
    ratings = load_from_options(name, data, parse_sep_option(sep), header, quiet=as_json)
    d = ratings.describe()
    d["n_users_index"], d["n_items_index"] = ratings.n_users, ratings.n_items
    d["date_min"], d["date_max"] = _date(d["time_min"]), _date(d["time_max"])
    if as_json:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in d.items()}
        click.echo(json.dumps(clean, indent=2))
        return
    lines = [
        ("ratings", f"{d['ratings']:,}"),
        ("users", f"{d['users']:,}"),
        ("items", f"{d['items']:,}"),
        ("rating scale", f"{d['rating_min']:g} .. {d['rating_max']:g} "
                         f"(mean {d['rating_mean']:.3f})"),
        ("density", f"{d['density'] * 100:.2f}%"),
        ("time range", f"{d['date_min']} .. {d['date_max']}" if d["date_min"] else "none"),
        ("titles", f"{d['titles']:,}"),
    ]
    click.echo(d["name"])
    for label, value in lines:
        click.echo(f"  {label:<13}{value}")


@datasets.command("download")
@click.argument("name", type=click.Choice(BUILTIN_NAMES, case_sensitive=False))
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
def download_cmd(name, progress):
    """Download, verify and unpack a builtin data set into the data home.

    Does nothing when it is already there. Without network access, the error says which
    file to fetch from where, and where to put it.

    \b
    Examples:
      mfcore datasets download ml-1m
      MFCORE_DATA_HOME=/data/movielens mfcore datasets download ml-25m --progress
    """
    from ..data import dataset_status, download_dataset

    before = dataset_status(name)
    folder = download_dataset(name.lower(), progress=progress)
    verb = "already present" if before["kind"] == "folder" else "ready"
    click.echo(f"{name.lower()}: {verb} in {folder}")
