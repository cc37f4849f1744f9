"""``optimizer="mcmc"``: fit a model by Gibbs sampling of its Bayesian factorization machine.

The engine side: the options (:func:`mcmc_options`), one run of the sampler
(:mod:`.gibbs`) with its per-sweep history (:func:`run`), and the :class:`Posterior` that
the run leaves, the kept samples, which predicts. Which features a model becomes is
the model side's business (:mod:`mfcore.models.bayes`).

A run is ``burn_in + samples`` sweeps. The samples of the last ``samples`` sweeps are kept
(rounded to float32, the precision they are saved in, so a saved and reloaded model
predicts bit-identically) and every prediction is their average: the posterior predictive
mean. With ``return_std`` also the posterior predictive standard deviation of a new
rating, ``sqrt(Var_s[y_hat_s] + mean_s[1/alpha_s])`` (parameter spread plus noise).

History, one entry per sweep (:class:`SamplerHistory`): ``train_rmse`` of the current
sample (``loss`` = its square, the training MSE), the validation MSE/RMSE/MAE of the
running average of the kept samples so far (NaN during burn-in), and wall seconds. The
last entry's validation figures are exactly what ``model.evaluate(validation)`` gives.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import bounds
from ..errors import ModelError, TrainingDiverged
from . import gibbs, loop
from .fm_design import FMDesign
from .trainer import History

#: what a run does when the call does not say; chosen on a validation split carved from
#: ml-100k fold u1's TRAINING part (benchmarks/tune_mcmc.py), never on a test fold
MCMC_DEFAULTS = {"samples": 200, "burn_in": 10}

#: options of the gradient optimizers that mean nothing to a sampler: refused when given
NOT_FOR_MCMC = ("epochs", "batch_size", "lr", "lr_decay", "early_stopping")
#: options the command line always passes: accepted at these values, refused otherwise
_DEFAULT_ONLY = {"shuffle": "epoch", "threads": 1, "restore_best": True, "keras_moments": True,
                 "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

_WHY = ("a Gibbs sampler has no learning rate, batches, epochs or early stopping: it runs "
        "burn_in + samples sweeps (options samples= and burn_in=)")


@dataclass
class McmcOptions:
    """The checked options of an mcmc fit (see :func:`mcmc_options`)."""

    samples: int
    burn_in: int
    seed: int
    verbose: int
    progress: bool
    log: object
    callbacks: tuple

    @property
    def sweeps(self):
        return self.burn_in + self.samples


def _count(value, what, minimum):
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not minimum <= value <= bounds.MAX_SWEEPS):
        raise ModelError(f"{what} must be an integer in [{minimum}, {bounds.MAX_SWEEPS:,}], "
                         f"got {value!r}")
    return int(value)


def mcmc_options(model, *, optimizer="mcmc", samples=None, burn_in=None, seed=None, verbose=1,
                 progress=None, log=None, callbacks=(), **others) -> McmcOptions:
    """Check the keyword options of ``model.fit(..., optimizer="mcmc")``.

    samples: kept sweeps, averaged for prediction (default 200); burn_in: sweeps run and
    discarded first (default 10); seed: the chain's seed (default: the model's); verbose:
    0 silent, 1 a line every few sweeps, 2 a line every sweep; progress: a progress bar on
    stderr (None: when it is a terminal); log: a callable taking each line (default: print
    to stderr); callbacks: callables ``f(sweep, history)``, one returning True stops.
    The gradient optimizers' options (epochs, batch_size, lr, ...) are refused."""
    if optimizer != "mcmc":
        raise ModelError(f"mcmc_options is for optimizer 'mcmc', not {optimizer!r}")
    for name, value in others.items():
        if name in NOT_FOR_MCMC:
            if value is not None:
                raise ModelError(f"{name} does not apply to optimizer 'mcmc': {_WHY}")
        elif name in _DEFAULT_ONLY:
            if value != _DEFAULT_ONLY[name]:
                raise ModelError(f"{name}={value!r} does not apply to optimizer 'mcmc': {_WHY}")
        else:
            raise ModelError(f"unknown fit option {name!r}")
    samples = _count(MCMC_DEFAULTS["samples"] if samples is None else samples, "samples", 1)
    burn_in = _count(MCMC_DEFAULTS["burn_in"] if burn_in is None else burn_in, "burn_in", 0)
    seed = model.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise ModelError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if log is None:
        def log(line):
            print(line, file=sys.stderr, flush=True)
    if progress is None:
        progress = sys.stderr.isatty()
    return McmcOptions(samples, burn_in, int(seed), int(verbose), bool(progress), log,
                       tuple(callbacks))


@dataclass
class SamplerHistory(History):
    """A :class:`~mfcore.engine.trainer.History` with one entry per SWEEP: ``loss`` the
    training MSE of the current sample, ``val_loss``/``val_mse``/``val_rmse``/``val_mae``
    those of the running average of the kept samples so far (NaN in burn-in), ``seconds``
    wall time (sampling and validation); besides, ``train_rmse``, ``alpha`` (the noise
    precision drawn), ``sweep_seconds`` (sampling alone) and ``n_averaged`` (kept samples
    in the running average)."""

    train_rmse: list = field(default_factory=list)
    alpha: list = field(default_factory=list)
    sweep_seconds: list = field(default_factory=list)
    n_averaged: list = field(default_factory=list)

    def as_dict(self) -> dict:
        out = super().as_dict()
        out.update(train_rmse=self.train_rmse, alpha=self.alpha,
                   sweep_seconds=self.sweep_seconds, n_averaged=self.n_averaged)
        return out


# ------------------------------------------------------------------------------- posterior

@dataclass(frozen=True)
class Layout:
    """The columns a posterior belongs to: ``p0`` (per-rating columns), block ``widths``,
    ``groups`` (p,), per group ``linear``/``factored`` flags, and the ``rank``."""

    p0: int
    widths: tuple
    groups: np.ndarray
    linear: np.ndarray
    factored: np.ndarray
    rank: int

    @classmethod
    def of(cls, design: FMDesign, rank: int):
        return cls(design.p0, tuple(b.width for b in design.blocks), design.groups.copy(),
                   design.linear.copy(), design.factored.copy(), int(rank))

    @property
    def p(self):
        return len(self.groups)

    @property
    def vcols(self):
        """The columns with factors (the others' v are 0 and not stored)."""
        return np.flatnonzero(self.factored[self.groups]) if self.rank else np.zeros(0, np.int64)

    def matches(self, design: FMDesign) -> bool:
        return (design.p0 == self.p0 and tuple(b.width for b in design.blocks) == self.widths
                and np.array_equal(design.groups, self.groups)
                and np.array_equal(design.linear, self.linear)
                and np.array_equal(design.factored, self.factored))

    def same(self, other) -> bool:
        return (self.p0 == other.p0 and self.widths == other.widths and self.rank == other.rank
                and np.array_equal(self.groups, other.groups)
                and np.array_equal(self.linear, other.linear)
                and np.array_equal(self.factored, other.factored))


class Posterior:
    """The kept samples of a run, float32: ``w0`` (S,), ``w`` (S, p), ``V`` (S, len(vcols),
    k) (the factors of the factored columns only), ``alpha`` (S,), and the ``sweeps`` they
    come from; predicts by averaging over them.

    Compact form (:meth:`compact`, what ``save(..., keep_samples=N)`` writes): the
    averaged predictor, exactly, plus the last N samples whole for the spread. An FM's
    mean prediction is w0_mean + w_mean . x + the mean over samples of the pairwise
    term, and that mean is the pairwise term of the S samples' factors side by side
    (scaled by 1/sqrt(S)): so ``V`` keeps all S samples while ``w0``, ``w``, ``alpha``,
    ``sweeps`` keep the last N (0 <= N <= S) and ``w0_mean`` / ``w_mean`` (float64) the
    averages of all S. (The factors do not compress further: on the u1 timesvdpp model
    the singular values of the stacked factors fall slowly, rank 800 of 2,000 leaving 15%
    of their energy.)"""

    ARRAYS = ("w0", "w", "V", "alpha", "sweeps")

    def __init__(self, layout: Layout, w0, w, V, alpha, sweeps, w0_mean=None, w_mean=None):
        self.layout = layout
        self.w0, self.w, self.V, self.alpha, self.sweeps = w0, w, V, alpha, sweeps
        self.w0_mean, self.w_mean = w0_mean, w_mean
        self._vcols = layout.vcols

    @property
    def n_samples(self):
        """Samples the mean averages (all kept ones, also in compact form)."""
        return len(self.V)

    @property
    def n_spread(self):
        """Samples kept whole, from which ``return_std`` computes the spread."""
        return len(self.w0)

    @property
    def compacted(self):
        return self.w_mean is not None

    @property
    def nbytes(self):
        extra = 0 if self.w_mean is None else self.w_mean.nbytes + 8
        return sum(getattr(self, a).nbytes for a in self.ARRAYS) + extra

    def compact(self, keep: int) -> "Posterior":
        """This posterior as the averaged predictor plus its last ``keep`` samples whole
        (see the class docstring); the mean prediction is the same up to float rounding."""
        if self.compacted:
            base = self
            keep = min(int(keep), self.n_spread)
        else:
            base = None
            keep = min(int(keep), self.n_samples)
        first = self.n_spread - keep
        w0_mean = self.w0_mean if base else float(np.mean(self.w0.astype(np.float64)))
        w_mean = self.w_mean if base else self.w.astype(np.float64).mean(axis=0)
        return Posterior(self.layout, self.w0[first:], self.w[first:], self.V,
                         self.alpha[first:], self.sweeps[first:], w0_mean, w_mean)

    def _scratch(self, D):
        k = self.layout.rank
        return np.zeros((self.layout.p, k)), gibbs._scratch(D, k)[0]

    def _sample_into(self, D, s, V, out, qrow):
        """y_hat of sample ``s`` on packed design ``D`` into ``out`` (``V`` (p, k) scratch
        whose non-factored rows stay 0; ``s`` counts the samples kept whole)."""
        if self.layout.rank:
            V[self._vcols] = self.V[self.n_samples - self.n_spread + s]
        gibbs._predict_into(D, float(self.w0[s]), self.w[s].astype(np.float64), V, out, qrow)

    def predict(self, design: FMDesign, return_std=False):
        """Posterior predictive mean (float64, one per rating of ``design``) and, with
        ``return_std``, the predictive standard deviation (see the module docstring; in
        compact form from the samples kept whole)."""
        if not self.layout.matches(design):
            raise ModelError("the features differ from those the posterior was sampled on")
        if return_std and self.n_spread == 0:
            raise ModelError("this model keeps the averaged predictor only (saved with "
                             "keep_samples=0): no predictive spread")
        D = gibbs._pack(design, for_fit=False)
        V, qrow = self._scratch(D)
        whole = gibbs.predictive(design.n, self.n_spread,
                                 lambda s, out: self._sample_into(D, s, V, out, qrow),
                                 self.alpha, return_std) if (return_std or not self.compacted) \
            else None
        if not self.compacted:
            return whole
        zero_w = np.zeros(self.layout.p)

        def pairwise_into(s, out):
            V[self._vcols] = self.V[s]
            gibbs._predict_into(D, 0.0, zero_w, V, out, qrow)
        mean = gibbs.predictive(design.n, self.n_samples, pairwise_into, np.ones(1))
        V[:] = 0.0
        linear = np.empty(design.n)
        gibbs._predict_into(D, float(self.w0_mean), self.w_mean, V, linear, qrow)
        mean += linear
        return (mean, whole[1]) if return_std else mean

    # ---- persistence ---------------------------------------------------------------------
    def state(self) -> dict:
        """Plain arrays to save (with the layout, so a file can be checked on load)."""
        L = self.layout
        out = {"w0": self.w0, "w": self.w, "V": self.V, "alpha": self.alpha,
               "sweeps": self.sweeps, "widths": np.array((L.p0,) + L.widths, np.int64),
               "groups": L.groups, "linear": L.linear, "factored": L.factored}
        if self.compacted:
            out["w0_mean"] = np.array([self.w0_mean], np.float64)
            out["w_mean"] = np.asarray(self.w_mean, np.float64)
        return out

    @classmethod
    def from_state(cls, d: dict, expected: Layout):
        """The posterior saved by :meth:`state`, for a model whose features have layout
        ``expected``; ValueError naming the first thing that does not fit."""
        missing = [k for k in cls.ARRAYS + ("widths", "groups", "linear", "factored") if k not in d]
        if missing:
            raise ValueError(f"posterior array {missing[0]!r} is missing")
        widths = np.asarray(d["widths"])
        if widths.ndim != 1 or len(widths) < 1 or widths.dtype.kind not in "iu":
            raise ValueError("posterior widths are not a list of integers")
        rank = expected.rank
        if "V" in d and np.ndim(d["V"]) == 3:
            rank = int(np.shape(d["V"])[2])
        layout = Layout(int(widths[0]), tuple(int(x) for x in widths[1:]), np.asarray(d["groups"]),
                        np.asarray(d["linear"]), np.asarray(d["factored"]), rank)
        if not layout.same(expected):
            raise ValueError(f"posterior columns (rank {layout.rank}, {layout.p} columns) do not "
                             f"match the model's features (rank {expected.rank}, {expected.p} "
                             f"columns)")
        compact = "w_mean" in d or "w0_mean" in d
        S = np.shape(d["V"])[0] if np.ndim(d["V"]) == 3 else -1
        N = np.shape(d["w0"])[0] if np.ndim(d["w0"]) == 1 else -1
        if S < 1:
            raise ValueError("posterior holds no sample")
        if not compact:
            N = S
        elif not 0 <= N <= S:
            raise ValueError(f"posterior keeps {N} samples whole but averages {S}")
        shapes = {"w0": (N,), "w": (N, expected.p), "V": (S, len(expected.vcols), expected.rank),
                  "alpha": (N,), "sweeps": (N,)}
        arrays = {}
        for name, shape in shapes.items():
            a = np.asarray(d[name])
            kind = "iu" if name == "sweeps" else "f"
            if a.shape != shape or a.dtype.kind not in kind or (kind == "f" and a.dtype != np.float32):
                raise ValueError(f"posterior array {name!r} has shape {a.shape} {a.dtype}, expected "
                                 f"{shape} {'int' if kind == 'iu' else 'float32'}")
            if kind == "f" and not np.all(np.isfinite(a)):
                raise ValueError(f"posterior array {name!r} holds NaN or infinite values")
            arrays[name] = a
        if np.any(arrays["alpha"] <= 0):
            raise ValueError("posterior noise precisions must be positive")
        w0_mean = w_mean = None
        if compact:
            for name, shape in (("w0_mean", (1,)), ("w_mean", (expected.p,))):
                a = np.asarray(d.get(name, np.zeros(0)))
                if a.shape != shape or a.dtype != np.float64 or not np.all(np.isfinite(a)):
                    raise ValueError(f"posterior array {name!r} has shape {a.shape} {a.dtype}, "
                                     f"expected {shape} float64 finite values")
            w0_mean, w_mean = float(d["w0_mean"][0]), np.asarray(d["w_mean"])
        return cls(expected, arrays["w0"], arrays["w"], arrays["V"], arrays["alpha"],
                   arrays["sweeps"].astype(np.int64), w0_mean, w_mean)


# ------------------------------------------------------------------------------------- run

#: bytes per factored column and factor that a run holds besides its kept samples: the
#: sampler's float64 factors, their transpose, its latest sample and per-row scratch, and
#: the model's float32 tables (measured: about 75 on ml-100k's mfb at k = 2,000 and 4,000)
SAMPLER_BYTES_PER_FACTOR = 80


def check_sampler_memory(factored, rank, samples, p=None):
    """MemoryLimitError (:func:`mfcore.engine.memory.check_fits`) unless a run over
    ``factored`` factored columns at ``rank`` keeping ``samples`` samples (``p`` columns in
    all; default ``factored``) fits in the memory available."""
    from .memory import check_fits
    p = factored if p is None else p
    S, cells = int(samples), int(factored) * int(rank)
    check_fits({"kept samples": 4 * S * (2 + p + cells) + 8 * S,
                "sampler state": SAMPLER_BYTES_PER_FACTOR * cells + 16 * p},
               what=f"sampling at rank {int(rank):,} and keeping {S:,} samples")


def run(design: FMDesign, rank: int, o: McmcOptions, validation=None, finish=None, settings=None):
    """Sample ``design`` for ``o.sweeps`` sweeps at ``rank``; returns ``(Posterior,
    SamplerHistory)``.

    validation: ``(design, y)`` with the training design's columns, scored after every kept
    sweep by the running average of the kept samples; finish(mean) -> the float32
    predictions a model reports for a mean (clipping, say; default: a plain cast).
    settings: recorded in the history besides the options."""
    layout = Layout.of(design, rank)
    S, p, vcols = o.samples, layout.p, layout.vcols
    check_sampler_memory(len(vcols), layout.rank, S, p)
    w0s, alphas = np.empty(S, np.float32), np.empty(S, np.float32)
    ws = np.empty((S, p), np.float32)
    Vs = np.empty((S, len(vcols), layout.rank), np.float32)
    sweeps = np.empty(S, np.int64)
    post = Posterior(layout, w0s, ws, Vs, alphas, sweeps)
    finish = finish or (lambda m: m.astype(np.float32))
    hist = SamplerHistory(settings={"optimizer": "mcmc", "samples": o.samples,
                                    "burn_in": o.burn_in, "seed": o.seed, "rank": int(rank),
                                    **(settings or {})})
    if validation is not None:
        dv, yv = validation
        if not layout.matches(dv):
            raise ModelError("the validation features differ from the training features")
        Dv = gibbs._pack(dv, for_fit=False)
        Vbuf, qrow = post._scratch(Dv)
        cur, vsum = np.empty(dv.n), np.zeros(dv.n)
    every = 1 if o.verbose >= 2 or o.sweeps <= 30 else max(1, o.sweeps // 20)
    bar = None
    if o.progress:
        from ..progress import Progress
        bar = Progress(o.sweeps, desc="Sampling", unit="sweep", enabled=True)
    kept = 0
    clock = [time.perf_counter()]

    def on_sweep(it, info):
        nonlocal kept
        val = (math.nan, math.nan, math.nan)
        if it >= o.burn_in:
            w0s[kept], alphas[kept], sweeps[kept] = info["w0"], info["alpha"], it
            ws[kept] = info["w"]
            if layout.rank:
                Vs[kept] = info["Vt"][:, vcols].T
            kept += 1
            if validation is not None:
                post._sample_into(Dv, kept - 1, Vbuf, cur, qrow)
                vsum[:] += cur
                sse, sae = loop.error_sums(finish(vsum / kept), yv)
                val = (sse / len(yv), math.sqrt(sse / len(yv)), sae / len(yv))
        now = time.perf_counter()
        seconds, clock[0] = now - clock[0], now
        tr = info["train_rmse"]
        for name, value in (("loss", tr * tr), ("train_rmse", tr), ("alpha", info["alpha"]),
                            ("sweep_seconds", info["seconds"]), ("seconds", seconds),
                            ("n_averaged", kept), ("val_loss", val[0]), ("val_mse", val[0]),
                            ("val_rmse", val[1]), ("val_mae", val[2])):
            getattr(hist, name).append(float(value) if name != "n_averaged" else value)
        if bar is not None:
            bar.update(1)
        if o.verbose and ((it + 1) % every == 0 or it + 1 in (o.burn_in, o.sweeps) or it == 0):
            line = f"Sweep {it + 1}/{o.sweeps} - train_rmse: {tr:.4f}"
            if validation is not None and kept:
                line += f" - val_rmse: {val[1]:.4f} (mean of {kept})"
            elif it < o.burn_in:
                line += " - burn-in"
            o.log(line + f" - {seconds:.3f}s")
        return any(bool(cb(it, hist)) for cb in o.callbacks)

    try:
        gibbs.fit_gibbs(design, rank, o.sweeps, burn_in=o.burn_in, seed=o.seed, n_kept=1,
                        callback=on_sweep)
    finally:
        if bar is not None:
            bar.close()
    if kept == 0:
        raise ModelError(f"sampling stopped after {len(hist.loss)} sweep(s), within the burn-in "
                         f"({o.burn_in}): no sample was kept")
    post = Posterior(layout, w0s[:kept], ws[:kept], Vs[:kept], alphas[:kept], sweeps[:kept])
    if not (np.all(np.isfinite(post.w)) and np.all(np.isfinite(post.V))
            and np.all(np.isfinite(post.w0)) and np.all(post.alpha > 0)):
        raise TrainingDiverged("the sampler produced NaN or infinite values (are the ratings "
                               "finite and not all equal?)")
    hist.stopped_early = kept < S
    return post, hist
