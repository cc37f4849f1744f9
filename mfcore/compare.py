"""Train the notebook's zoo side by side on one split and tabulate it, notebook-style.

>>> from mfcore.compare import compare, format_table
>>> results = compare(train, val, models=["mfb", "mfbs"], factors=[10, 50])
>>> print(format_table(results))
"""
from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass

from .errors import MfcoreError, ModelError

#: the notebook's models, in its order (``residual`` is ours: ask for it with ``models=``)
NOTEBOOK_MODELS = ("mf", "mfb", "mfbs", "linear", "nn", "mixed-bias", "mixed-interaction")


@dataclass
class CompareResult:
    """One model at one ``factors`` setting: its hyper-parameters and per-epoch history."""

    model: str
    factors: int
    params: dict
    history: dict
    seconds: float
    error: str | None = None
    #: with several seeds: each run's history; ``history`` is then their per-epoch mean
    runs: list | None = None

    @property
    def best_epoch(self):
        v = self.history.get("val_mse") or []
        if (self.history.get("settings") or {}).get("optimizer") == "mcmc":
            # a chain's running average is reported where it ends: picking its best sweep
            # would pick the sweep count on the validation data
            return len(v) if v and not math.isnan(v[-1]) else None
        return None if not v else int(min(range(len(v)), key=v.__getitem__)) + 1

    @property
    def best_mse(self):
        e = self.best_epoch
        return math.nan if e is None else self.history["val_mse"][e - 1]

    @property
    def val_loss_sd(self):
        """Per-epoch standard deviation of val_loss over the seeds (None for one run)."""
        if not self.runs or len(self.runs) < 2:
            return None
        n = len(self.history.get("val_loss", []))
        vals = [[r["val_loss"][e] for r in self.runs] for e in range(n)]
        return [statistics.stdev(v) for v in vals]

    def as_dict(self):
        return {"model": self.model, "factors": self.factors, "params": self.params,
                "history": self.history, "val_loss_sd": self.val_loss_sd,
                "runs": self.runs, "seconds": self.seconds, "best_epoch": self.best_epoch,
                "best_val_mse": None if self.best_epoch is None else self.best_mse,
                "best_val_rmse": None if self.best_epoch is None else math.sqrt(self.best_mse),
                "error": self.error}


def notebook_model(name, k, seed=0):
    """The model the notebook (and the Keras reference) means by ``name`` at ``k`` factors:
    e.g. ``mixed-bias`` at k is 10 dot-product factors and k bias factors."""
    from .models import MODELS, create_model_at
    cls = MODELS.get(name)
    if cls is None:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if hasattr(cls, "keras_reference"):
        return cls.keras_reference(k).set_params(seed=seed)
    return create_model_at(name, k, seed=seed)


def fit_keywords(optimizer=None, *, epochs=None, batch_size=None, lr=None, shuffle="epoch",
                 threads=1, early_stopping=None, samples=None, burn_in=None) -> dict:
    """The keyword options :func:`compare` passes to each ``fit`` besides ``optimizer``:
    for ``"mcmc"`` the sampler's, plus any gradient option that differs from its default
    (which ``fit`` then refuses); else the gradient ones (samples or burn_in: ModelError)."""
    if optimizer == "mcmc":
        fit_kw = {"samples": samples, "burn_in": burn_in}
        fit_kw.update({k: v for k, v, d in (("epochs", epochs, None),
                                            ("batch_size", batch_size, None),
                                            ("lr", lr, None), ("shuffle", shuffle, "epoch"),
                                            ("threads", threads, 1),
                                            ("early_stopping", early_stopping, None)) if v != d})
    else:
        fit_kw = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "shuffle": shuffle,
                  "threads": threads, "early_stopping": early_stopping}
        if samples is not None or burn_in is not None:
            raise ModelError("samples and burn_in apply to optimizer='mcmc' only")
    return fit_kw


def check_configs(models, factors, seed=0, *, validation=True, **fit):
    """ModelError, before anything trains, when a model at a ``factors`` value would refuse
    its hyper-parameters or the fit options ``fit`` (see :meth:`RatingModel.check_fit`);
    the message names the model."""
    from .models import has_factors
    for name in models:
        for k in (factors if has_factors(name) else factors[:1]):
            try:
                notebook_model(name, k, seed).check_fit(validation=validation, **fit)
            except ModelError as exc:
                at = f" (k={k})" if has_factors(name) else ""
                raise ModelError(f"{name}{at}: {exc}; nothing was trained") from None


def compare(train, validation, *, models=NOTEBOOK_MODELS, factors=(10, 50), epochs=None,
            batch_size=None, optimizer=None, lr=None, seed=0, repeats=1, shuffle="epoch",
            threads=1, early_stopping=None, samples=None, burn_in=None, log=None, progress=None,
            keep_going=True):
    """Fit every model at every ``factors`` value on ``train``, validating on ``validation``.

    epochs, batch_size, optimizer, lr: None gives each model its own defaults (the
    notebook's models: 6 epochs of Adam on batches of 64, as the notebook).

    repeats: train each model with seeds ``seed .. seed+repeats-1`` (initialisation, order
    and dropout) and report the per-epoch mean, with each run kept in ``runs``: one Keras
    run is one draw from a spread as wide as 0.05 in early epochs, so means compare better.
    Returns a list of :class:`CompareResult` in the order trained. ``log(line)`` receives the
    per-epoch lines (default: silent). Every model's settings are checked first
    (:func:`check_configs`): one that would refuse them raises ModelError before anything
    trains. With ``keep_going`` a model that fails while training (e.g. diverges) is
    recorded with its error and the others still run.
    ``optimizer="mcmc"`` samples each model (samples, burn_in: see
    :func:`mfcore.engine.mcmc.mcmc_options`); the gradient options are then passed on only
    when they differ from this function's defaults (and so are refused by ``fit``).
    """
    if not (isinstance(repeats, int) and repeats >= 1):
        raise ModelError(f"repeats must be a positive integer, got {repeats!r}")
    from .models import has_factors
    fit_kw = fit_keywords(optimizer, epochs=epochs, batch_size=batch_size, lr=lr,
                          shuffle=shuffle, threads=threads, early_stopping=early_stopping,
                          samples=samples, burn_in=burn_in)
    check_configs(models, factors, seed, validation=validation is not None,
                  optimizer=optimizer, **fit_kw)
    results = []
    for name in models:
        for k in (factors if has_factors(name) else factors[:1]):
            t0 = time.perf_counter()
            error, hists, params = None, [], None
            for run_seed in range(seed, seed + repeats):
                model = notebook_model(name, k, run_seed)
                params = _plain(model.get_params())
                if log:
                    log(f"== {name}, k={k}: {model!r}")
                try:
                    model.fit(train, validation=validation, optimizer=optimizer, **fit_kw,
                              verbose=1 if log else 0, log=log, progress=progress)
                except MfcoreError as exc:
                    if not keep_going:
                        raise
                    error = str(exc)
                    break
                hists.append(model.history_.as_dict())
            if repeats > 1:
                params.pop("seed", None)
            hist = _mean_history(hists) if hists and error is None else {}
            results.append(CompareResult(name, k if has_factors(name) else None, params, hist,
                                         time.perf_counter() - t0, error,
                                         hists if repeats > 1 else None))
    return results


@dataclass
class FoldSummary:
    """One model at one ``factors`` setting over several folds: each fold's test figures
    after its last epoch (never a best epoch on the test set: a fold's test set chooses
    nothing)."""

    model: str
    factors: int | None
    params: dict
    folds: dict            # fold name -> {"mse", "rmse", "mae", "epochs", "seconds"}
    errors: dict           # fold name -> error message

    def _stat(self, key):
        vals = [f[key] for f in self.folds.values()]
        if not vals or self.errors:
            return math.nan, math.nan
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    @property
    def rmse(self):
        """(mean, sample std) of the final-epoch RMSE over the folds."""
        return self._stat("rmse")

    @property
    def mse(self):
        return self._stat("mse")

    def as_dict(self):
        (rm, rs), (mm, ms) = self.rmse, self.mse
        return {"model": self.model, "factors": self.factors, "params": self.params,
                "folds": self.folds, "errors": self.errors,
                "rmse_mean": rm, "rmse_std": rs, "mse_mean": mm, "mse_std": ms}


def compare_folds(folds, *, models=NOTEBOOK_MODELS, factors=(10, 50), seed=0, log=None,
                  progress=None, jobs=1, scheduler=None, **fit):
    """Every model at every ``factors`` value cross-validated on ``folds``
    (``[(name, train, test), ...]``, e.g. GroupLens' u1..u5) by
    :func:`mfcore.tune.cross_validate`, with the fit options ``fit`` (epochs, batch_size,
    optimizer, lr, shuffle, early_stopping: on an inner split of each fold's training
    rows, never on its test rows). jobs/scheduler: where the folds run (as
    ``cross_validate``; the numbers do not depend on it). Returns one
    :class:`FoldSummary` per model and ``factors``, in training order, holding each
    fold's figures after its last (or, with early stopping, kept) epoch."""
    from .models import has_factors
    from .tune import FoldSet, cross_validate
    fold_set = FoldSet(pairs=[(train, test) for _, train, test in folds],
                       names=[name for name, _, _ in folds])
    fit = {k: v for k, v in fit.items() if v is not None}
    check_configs(models, factors, seed, **fit)
    out = []
    for name in models:
        for k in (factors if has_factors(name) else factors[:1]):
            model = notebook_model(name, k, seed)
            if log:
                log(f"== {name}, k={k}: {model!r} on folds {', '.join(fold_set.names)}")
            frame = cross_validate(model, fold_set, seed=seed, jobs=jobs,
                                   scheduler=scheduler, progress=progress, **fit)
            s = FoldSummary(name, k if has_factors(name) else None,
                            _plain(model.get_params()), {}, {})
            for r in frame.itertuples():
                if isinstance(r.error, str):
                    s.errors[r.fold] = r.error
                else:
                    s.folds[r.fold] = {"mse": r.mse, "rmse": r.rmse, "mae": r.mae,
                                       "epochs": int(r.epochs), "seconds": r.seconds}
                    if log:
                        log(f"   fold {r.fold}: RMSE {r.rmse:.4f} after {int(r.epochs)} "
                            f"epochs ({r.seconds:.1f} s)")
            out.append(s)
    return out


def format_folds(summaries, markdown=False) -> str:
    """Per model: final-epoch RMSE on each fold, then mean +- sample std over the folds."""
    names = []
    for s in summaries:
        names += [f for f in list(s.folds) + list(s.errors) if f not in names]
    rows = []
    for s in summaries:
        cells = []
        for f in names:
            cells.append(f"{s.folds[f]['rmse']:.4f}" if f in s.folds else "failed")
        m, sd = s.rmse
        cells.append("-" if math.isnan(m) else f"{m:.4f} +- {sd:.4f}")
        rows.append((s.model, str(_k(s)), cells))
    if markdown:
        out = ["| model | k | " + " | ".join(names) + " | mean +- std |",
               "|" + " --- |" * (len(names) + 3)]
        out += [f"| {m} | {k} | " + " | ".join(c) + " |" for m, k, c in rows]
    else:
        out = [f"{'model':<18} {'k':>3}  " + "  ".join(f"{f:>7}" for f in names)
               + f"  {'mean +- std':>17}"]
        out += [f"{m:<18} {k:>3}  " + "  ".join(f"{c:>7}" for c in cs[:-1]) + f"  {cs[-1]:>17}"
                for m, k, cs in rows]
    out += ["", "Test RMSE on each fold after the last epoch (with early stopping: the epoch "
                "an inner split of the fold's training part kept; nothing is chosen on a test "
                "fold); std is the sample standard deviation over the folds."]
    for s in summaries:
        for f, err in s.errors.items():
            out.append(f"{s.model}, k={_k(s)}, fold {f} failed: {err}")
    return "\n".join(out)


def _mean_history(hists):
    """Per-epoch means of the numeric lists of several histories (shortest length)."""
    if len(hists) == 1:
        return hists[0]
    out = {"settings": hists[0].get("settings", {})}
    for key in ("loss", "val_loss", "val_mse", "val_rmse", "val_mae", "seconds"):
        lists = [h.get(key) or [] for h in hists]
        n = min(len(v) for v in lists)
        out[key] = [statistics.fmean(v[e] for v in lists) for e in range(n)]
    return out


def _plain(params):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


def _k(result):
    return "-" if result.factors is None else result.factors


def _sampled(result):
    return (result.history.get("settings") or {}).get("optimizer") == "mcmc"


def ranked(results):
    """Results sorted by best validation MSE (failures last)."""
    return sorted(results, key=lambda r: (r.best_epoch is None, r.best_mse))


def format_table(results, curves=True) -> str:
    """The notebook-style report: per model, its epochs; then the ranked summary.

    ``curves=False`` leaves the per-epoch lines out (failures are still listed): for when
    the epoch log has already been shown to the same reader."""
    lines = []
    for r in results:
        h = r.history
        if not curves:
            if r.error:
                lines.append(f"{r.model}, k={_k(r)} failed: {r.error}")
            continue
        lines.append(f"{r.model}, k={_k(r)}")
        sd = r.val_loss_sd
        if sd:
            lines[-1] += f" (mean of {len(r.runs)} seeds; +- is the spread)"
        if _sampled(r):
            n = len(h.get("loss", []))
            step = max(1, n // 10)
            for e in [e for e in range(1, n + 1) if e % step == 0 or e == n]:
                lines.append(f"  Sweep {e}/{n} - train_mse: {h['loss'][e - 1]:.4f} - val_mse of "
                             f"the running mean: {h['val_mse'][e - 1]:.4f}")
            if r.error:
                lines.append(f"  failed: {r.error}")
            continue
        for e, loss in enumerate(h.get("loss", []), start=1):
            spread = f" +- {sd[e - 1]:.4f}" if sd else ""
            lines.append(f"  Epoch {e}/{len(h['loss'])} - {h['seconds'][e - 1]:.2f}s - "
                         f"loss: {loss:.4f} - val_loss: {h['val_loss'][e - 1]:.4f}{spread}")
        if r.error:
            lines.append(f"  failed: {r.error}")
    if lines:
        lines.append("")
    lines.append(f"{'rank':>4}  {'model':<18} {'k':>3}  {'best epoch':>10}  {'val MSE':>8}  "
                 f"{'val RMSE':>8}  {'seconds':>8}")
    for rank, r in enumerate(ranked(results), start=1):
        if r.best_epoch is None:
            lines.append(f"{rank:>4}  {r.model:<18} {_k(r):>3}  {'-':>10}  {'-':>8}  "
                         f"{'-':>8}  {r.seconds:>8.2f}")
        else:
            lines.append(f"{rank:>4}  {r.model:<18} {_k(r):>3}  {r.best_epoch:>10}  "
                         f"{r.best_mse:>8.4f}  {math.sqrt(r.best_mse):>8.4f}  "
                         f"{r.seconds:>8.2f}")
    return "\n".join(lines)


def format_markdown(results) -> str:
    """Markdown: a per-epoch val_loss table and the ranked summary."""
    n = max((len(r.history.get("val_loss", [])) for r in results if not _sampled(r)), default=0)
    head = "| model | k | " + " | ".join(f"epoch {e}" for e in range(1, n + 1)) + " | s/epoch |"
    out = ["Validation loss per epoch:", "", head,
           "|" + " --- |" * (n + 3)]
    for r in (r for r in results if not _sampled(r)):
        v = r.history.get("val_loss", [])
        s = r.history.get("seconds", [])
        cells = [f"{x:.4f}" for x in v] + [""] * (n - len(v))
        per = f"{sum(s) / len(s):.3f}" if s else "-"
        out.append(f"| {r.model} | {_k(r)} | " + " | ".join(cells) + f" | {per} |")
    out += ["", "Ranked by best validation MSE:", "",
            "| rank | model | k | best epoch | val MSE | val RMSE | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for rank, r in enumerate(ranked(results), start=1):
        if r.best_epoch is None:
            out.append(f"| {rank} | {r.model} | {_k(r)} | - | - | - | {r.seconds:.2f} |")
        else:
            out.append(f"| {rank} | {r.model} | {_k(r)} | {r.best_epoch} | "
                       f"{r.best_mse:.4f} | {math.sqrt(r.best_mse):.4f} | {r.seconds:.2f} |")
    return "\n".join(out)


def format_json(results, **extra) -> str:
    return json.dumps({**extra, "results": [r.as_dict() for r in results]})


def plot_curves(results, path):
    """Learning curves (loss dashed, val_loss solid) per model, saved to ``path``.
    Needs matplotlib (``pip install mfcore[plot]``)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MfcoreError("plotting needs matplotlib: pip install 'mfcore[plot]'") from None
    ks = sorted({r.factors for r in results}, key=lambda k: (k is None, k or 0))
    fig, axes = plt.subplots(1, len(ks), figsize=(6 * len(ks), 4.5), squeeze=False)
    for ax, k in zip(axes[0], ks):
        for r in (r for r in results if r.factors == k):
            v = r.history.get("val_loss", [])
            if not v:
                continue
            epochs = range(1, len(v) + 1)
            line, = ax.plot(epochs, v, marker="o", label=r.model)
            ax.plot(epochs, r.history["loss"], linestyle="--", color=line.get_color(), alpha=0.5)
        ax.set_title(f"k = {'-' if k is None else k} (solid: val_loss, dashed: loss)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        lo = min((min(r.history["val_loss"]) for r in results if r.factors == k
                  and r.history.get("val_loss")), default=0.7)
        ax.set_ylim(lo - 0.05, lo + 0.45)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    import os

    from .atomic import atomic_output
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        with atomic_output(path) as fh:
            fig.savefig(fh, dpi=110, format=ext)
    except OSError as exc:
        raise MfcoreError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a format matplotlib cannot write
        raise MfcoreError(f"cannot write the plot {path}: {exc}") from None
    finally:
        plt.close(fig)
    return path
