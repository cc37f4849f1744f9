"""The Bayesian FM Gibbs sampler (mfcore.engine.gibbs) against things known independently:
an exact Gaussian posterior, brute-force conditionals on a grid, the expanded design, its
own seed, and myFM's accuracy on GroupLens u1."""
import math

import numpy as np
import pytest

from mfcore.engine.fm_design import (CSR, FMDesign, RelationBlock, csr_from_triplets, feature_set, hstack,
                                     one_hot, row_normalised)
from mfcore.engine.gibbs import GibbsPriors, fit_gibbs, fm_predict, gibbs_conditional, predict


# ------------------------------------------------------------------------------------ fixtures

def dense_csr(a):
    a = np.asarray(a, float)
    r, c = np.nonzero(a)
    return csr_from_triplets(r, c, a[r, c], a.shape)


def tiny_design(seed=0, n=60, nu=6, ni=5, nd=4):
    """Day one-hot (some ratings on no known day) | user block [one-hot | N(u)/sqrt|N(u)|]
    | item block one-hot; four prior groups."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, nu, n)
    i = rng.integers(0, ni, n)
    d = rng.integers(-1, nd, n)
    y = rng.normal(3.0, 1.0, n)
    utab = hstack([one_hot(np.arange(nu), nu), row_normalised(u, i, (nu, ni))])
    itab = one_hot(np.arange(ni), ni)
    groups = np.repeat([0, 1, 2, 3], [nd, nu, ni, ni])
    return FMDesign(y, one_hot(d, nd), (RelationBlock(u, utab), RelationBlock(i, itab)), groups)


def dense_of(design):
    """The expanded design as a dense N x p matrix."""
    return design.expanded().X.toarray()


def log_joint(state, A, design, priors, k):
    """log p(y, w0, w, V, alpha, mu, lambda) up to a constant, from the dense design ``A``
    (nothing shared with the sampler's code)."""
    g = design.groups
    w0, w, V, alpha = state["w0"], state["w"], state["V"], state["alpha"]
    mu_w, lam_w, mu_v, lam_v = state["mu_w"], state["lambda_w"], state["mu_v"], state["lambda_v"]
    yhat = w0 + A @ w
    if k:
        yhat = yhat + 0.5 * np.sum((A @ V) ** 2 - (A ** 2) @ (V ** 2), axis=1)
    r = design.y - yhat
    lp = 0.5 * len(r) * math.log(alpha) - 0.5 * alpha * r @ r
    lp += -0.5 * priors.lambda0 * w0 ** 2
    lp += np.sum(0.5 * np.log(lam_w[g]) - 0.5 * lam_w[g] * (w - mu_w[g]) ** 2)
    lp += np.sum(0.5 * np.log(lam_v[g]) - 0.5 * lam_v[g] * (V - mu_v[g]) ** 2)
    for mu, lam in ((mu_w, lam_w), (mu_v.ravel(), lam_v.ravel())):
        lp += np.sum((priors.a0 - 1) * np.log(lam) - priors.b0 * lam + 0.5 * np.log(priors.gamma0 * lam)
                     - 0.5 * priors.gamma0 * lam * (mu - priors.mu0) ** 2)
    lp += (priors.a0 - 1) * math.log(alpha) - priors.b0 * alpha
    return lp


def set_param(state, param, value):
    s = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in state.items()}
    name = param[0]
    if name in ("w0", "alpha"):
        s[name] = value
    elif name == "v":
        s["V"][param[1], param[2]] = value
    elif name in ("mu_v", "lambda_v"):
        s[name][param[1], param[2]] = value
    else:
        s[name][param[1]] = value
    return s


def grid_moments(cond, param, design, priors, k, points=2001):
    """Mean and variance of exp(log joint) over a fine grid of the parameter's values,
    normalised numerically. The grid spans +-12 claimed standard deviations (clipped at 0
    for precisions), so a wrong claimed mean or variance moves the grid moments."""
    sd = math.sqrt(cond.var)
    lo, hi = cond.mean - 12 * sd, cond.mean + 12 * sd
    if cond.family == "gamma":
        lo = max(lo, 1e-12)
    xs = np.linspace(lo, hi, points)
    A = dense_of(design)
    lp = np.array([log_joint(set_param(cond.state, param, x), A, design, priors, k) for x in xs])
    dens = np.exp(lp - lp.max())
    z = np.trapezoid(dens, xs)
    mean = np.trapezoid(xs * dens, xs) / z
    var = np.trapezoid((xs - mean) ** 2 * dens, xs) / z
    return mean, var


# ------------------------------------------------------------------- 1. exact Gaussian posterior

def test_rank0_with_fixed_precisions_samples_the_exact_gaussian_posterior():
    """Biases only (rank 0), alpha and (mu_w, lambda_w) held fixed: the posterior of
    theta = (w0, w) is Gaussian with precision alpha A^T A + Lambda and mean
    P^-1 (alpha A^T y + Lambda mu), A = [1 | expanded design]. The chain's mean and variance
    of every coordinate must match within 5 Monte-Carlo standard errors, estimated by
    batch means over 50 batches (which accounts for the chain's autocorrelation); the test
    also asserts those errors are small (< 4% of the posterior sd, < 8% of the variance),
    so it can see a wrong mean of ~0.2 sd or a variance off by ~40%."""
    rng = np.random.default_rng(3)
    n, p0, R, pb = 40, 4, 8, 3
    X = dense_csr(rng.normal(size=(n, p0)))
    table = dense_csr(rng.normal(size=(R, pb)))
    rows = rng.integers(0, R, n)
    groups = np.array([0, 0, 1, 1, 2, 2, 2])
    mu_w, lam_w, alpha, lambda0 = np.array([0.5, -0.3, 0.2]), np.array([2.0, 1.0, 4.0]), 4.0, 0.5
    design0 = FMDesign(np.zeros(n), X, (RelationBlock(rows, table),), groups)
    A = np.hstack([np.ones((n, 1)), dense_of(design0)])
    theta_true = rng.normal(size=A.shape[1])
    y = A @ theta_true + rng.normal(scale=1 / math.sqrt(alpha), size=n)
    design = design0.with_y(y)

    Lam = np.diag(np.concatenate([[lambda0], lam_w[groups]]))
    m0 = np.concatenate([[0.0], mu_w[groups]])
    P = alpha * A.T @ A + Lam
    cov = np.linalg.inv(P)
    mean = cov @ (alpha * A.T @ y + Lam @ m0)

    res = fit_gibbs(design, 0, 20_100, burn_in=100, seed=5, priors=GibbsPriors(lambda0=lambda0),
                    fixed_alpha=alpha, fixed_hyper={"mu_w": mu_w, "lambda_w": lam_w})
    assert res.V.shape == (20_000, design.p, 0)
    draws = np.column_stack([res.w0, res.w])
    batches = draws.reshape(50, -1, draws.shape[1])
    bm = batches.mean(axis=1)
    se_mean = bm.std(axis=0, ddof=1) / math.sqrt(50)
    sq = ((batches - mean) ** 2).mean(axis=1)
    se_var = sq.std(axis=0, ddof=1) / math.sqrt(50)
    sd = np.sqrt(np.diag(cov))
    assert np.all(se_mean < 0.04 * sd) and np.all(se_var < 0.08 * sd ** 2)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * se_mean), (draws.mean(axis=0), mean, se_mean)
    assert np.all(np.abs(sq.mean(axis=0) - sd ** 2) < 5 * se_var), (sq.mean(axis=0), sd ** 2, se_var)
    # alpha and the hyper-parameters really were held
    assert np.all(res.alpha == alpha)
    np.testing.assert_array_equal(res.hyper["lambda_w"], lam_w)


# ------------------------------------------------------------------- 2. conditionals by brute force

PARAMS_BLOCKS = [("w0",), ("w", 1), ("w", 6), ("w", 13), ("w", 18), ("v", 2, 0), ("v", 5, 1),
                 ("v", 12, 2), ("v", 16, 1), ("v", 19, 0), ("alpha",), ("lambda_w", 2), ("mu_w", 1),
                 ("lambda_v", 1, 2), ("mu_v", 3, 0)]


@pytest.mark.parametrize("blocks", [True, False], ids=["blocks", "expanded"])
@pytest.mark.parametrize("param", PARAMS_BLOCKS, ids=lambda p: "-".join(map(str, p)))
def test_every_conditional_matches_the_normalised_log_joint_on_a_grid(param, blocks):
    """For each parameter: the (mean, var) the sampler computes from its caches in sweep 3
    equal those of the log joint, evaluated on a grid of that parameter's values with
    everything else at the sampler's state of that moment, and normalised numerically.
    Columns: 0-3 day (X), 4-9 user one-hot, 10-14 N(u), 15-19 item one-hot."""
    k = 3
    design = tiny_design()
    if not blocks:
        design = design.expanded()
    priors = GibbsPriors()
    cond = gibbs_conditional(design, k, param, seed=11, sweep=3, priors=priors)
    mean, var = grid_moments(cond, param, design, priors, k)
    sd = math.sqrt(cond.var)
    assert abs(mean - cond.mean) < 1e-6 * sd, (mean, cond.mean)
    assert abs(var / cond.var - 1) < 1e-5, (var, cond.var)


def test_a_wrong_conditional_would_be_seen():
    """The grid check has power: shifting the claimed mean by 1% of a sd, or the variance
    by 1%, fails the tolerances above."""
    design, priors, param = tiny_design(), GibbsPriors(), ("v", 12, 2)
    cond = gibbs_conditional(design, 3, param, seed=11, sweep=3, priors=priors)
    mean, var = grid_moments(cond, param, design, priors, 3)
    sd = math.sqrt(cond.var)
    assert abs(mean - (cond.mean + 0.01 * sd)) > 1e-6 * sd
    assert abs(var / (cond.var * 1.01) - 1) > 1e-5


# ------------------------------------------------------------------- 3. blocks == expanded design

def test_relation_blocks_give_the_samples_of_the_expanded_design():
    design = tiny_design(seed=4, n=200, nu=12, ni=9, nd=5)
    a = fit_gibbs(design, 4, 30, burn_in=10, seed=2)
    b = fit_gibbs(design.expanded(), 4, 30, burn_in=10, seed=2)
    for x, z in ((a.w0, b.w0), (a.w, b.w), (a.V, b.V), (a.alpha, b.alpha)):
        np.testing.assert_allclose(x, z, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(predict(a, design), predict(b, design.expanded()), rtol=1e-9)


def test_block_prediction_equals_the_dense_formula():
    design = tiny_design(seed=1)
    rng = np.random.default_rng(0)
    w0, w, V = 0.3, rng.normal(size=design.p), rng.normal(size=(design.p, 3))
    A = dense_of(design)
    want = w0 + A @ w + 0.5 * np.sum((A @ V) ** 2 - (A ** 2) @ (V ** 2), axis=1)
    np.testing.assert_allclose(fm_predict(design, w0, w, V), want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- 4. determinism

def test_same_seed_bit_identical_other_seed_different():
    design = tiny_design(seed=2)
    a, b = (fit_gibbs(design, 3, 12, burn_in=2, seed=7) for _ in range(2))
    c = fit_gibbs(design, 3, 12, burn_in=2, seed=8)
    for name in ("w0", "w", "V", "alpha"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
        assert not np.any(getattr(a, name) == getattr(c, name))
    assert a.history.train_rmse == b.history.train_rmse


# ------------------------------------------------------------------- random numbers

def test_counter_based_normals_and_gammas_have_the_right_laws():
    """Kolmogorov-Smirnov distance of 200,000 paired Box-Muller normals to N(0, 1) below
    the 1% critical value 1.63/sqrt(n); no correlation within a pair; Gamma draws with
    the right mean and variance for shapes below 1, small and large (5 standard errors)."""
    from mfcore.engine.gibbs import _fill_normals, _gamma
    n = 200_000
    z = np.empty(n)
    _fill_normals(3, 5, 7, 11, z)
    zs = np.sort(z)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(zs / math.sqrt(2)))
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.63 / math.sqrt(n), ks
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 / math.sqrt(n / 2)
    for shape, rate in ((0.5, 2.0), (3.0, 0.5), (40_000.0, 3.0)):
        g = np.array([_gamma(1, 2, 3, i, shape, rate) for i in range(50_000)])
        mean, var = shape / rate, shape / rate ** 2
        assert abs(g.mean() - mean) < 5 * math.sqrt(var / len(g))
        assert abs(g.var() / var - 1) < 5 * math.sqrt(2 / len(g)) * (1 + 3 / shape) ** 0.5


# ------------------------------------------------------------------- API details

def test_kept_samples_validation_history_and_predictive_std():
    design = tiny_design(seed=5, n=150)
    val = tiny_design(seed=6, n=40)
    # same columns: rebuild the validation blocks over the training tables' shapes
    res = fit_gibbs(design, 2, 25, burn_in=5, seed=1, validation=val)
    assert res.n_kept == 20 and list(res.sweeps) == list(range(5, 25))
    assert all(math.isnan(v) for v in res.history.val_rmse[:5])
    # the running-average validation prediction is the posterior mean over all kept samples
    np.testing.assert_allclose(res.val_pred, predict(res, val), rtol=1e-12)
    assert res.history.val_rmse[-1] == pytest.approx(math.sqrt(np.mean((predict(res, val) - val.y) ** 2)))
    mean, std = predict(res, val, return_std=True)
    each = np.array([fm_predict(val, res.w0[s], res.w[s], res.V[s]) for s in range(res.n_kept)])
    np.testing.assert_allclose(mean, each.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std ** 2, each.var(0) + np.mean(1 / res.alpha), rtol=1e-9)
    thin = fit_gibbs(design, 2, 25, burn_in=5, seed=1, n_kept=4)
    assert list(thin.sweeps) == [9, 14, 19, 24]
    np.testing.assert_array_equal(thin.V, res.V[[4, 9, 14, 19]])
    assert len(res.history.seconds) == 25 and res.history.train_rmse[-1] < 1.2


def test_callback_can_stop_and_bad_designs_are_refused():
    design = tiny_design()
    res = fit_gibbs(design, 2, 50, burn_in=0, seed=0, callback=lambda it, info: it == 4)
    assert len(res.history.train_rmse) == 5 and res.n_kept == 5
    other = FMDesign(design.y, None, design.blocks)
    with pytest.raises(ValueError, match="columns"):
        predict(res, other)
    with pytest.raises(ValueError):
        fit_gibbs(design, 2, 10, burn_in=10)


# ------------------------------------------------------------------- held (bias-only / factors-only) groups

def held_design():
    """tiny_design with the day group bias-only (factored False) and the N(u) group
    factors-only (linear False), as mfcore.models.bayes builds Koren's time and implicit terms."""
    d = tiny_design()
    return FMDesign(d.y, d.X, d.blocks, d.groups, linear=np.array([True, True, False, True]),
                    factored=np.array([False, True, True, True]))


def test_held_parts_stay_zero_and_the_others_move():
    d = held_design()
    res = fit_gibbs(d, 3, 20, burn_in=0, seed=1)
    day, nu = d.groups == 0, d.groups == 2
    assert np.all(res.V[:, day, :] == 0) and np.all(res.w[:, nu] == 0)
    assert np.all(res.w[:, day] != 0) and np.all(res.V[:, nu, :] != 0)
    # the predictions are those of the FM with the held parts at zero
    s = 7
    np.testing.assert_allclose(predict(fit_gibbs(d, 3, 8, seed=1, n_kept=1), d),
                               fm_predict(d, res.w0[s], res.w[s], res.V[s]), rtol=1e-12)
    with pytest.raises(ValueError, match="never drew"):
        gibbs_conditional(d, 3, ("v", 1, 0), seed=11, sweep=2)
    with pytest.raises(ValueError, match="never drew"):
        gibbs_conditional(d, 3, ("w", 12), seed=11, sweep=2)


@pytest.mark.parametrize("param", [("w", 1), ("w", 6), ("w", 16), ("v", 5, 1), ("v", 12, 2), ("v", 19, 0),
                                   ("alpha",), ("w0",)], ids=lambda p: "-".join(map(str, p)))
def test_conditionals_with_held_parts_match_the_log_joint(param):
    """The held parameters are zeros in the log joint; every conditional that is drawn must
    still be the normalised log joint's (same grid check as above)."""
    k, design, priors = 3, held_design(), GibbsPriors()
    cond = gibbs_conditional(design, k, param, seed=11, sweep=3, priors=priors)
    held = cond.state["V"][design.groups == 0], cond.state["w"][design.groups == 2]
    assert np.all(held[0] == 0) and np.all(held[1] == 0)
    mean, var = grid_moments(cond, param, design, priors, k)
    sd = math.sqrt(cond.var)
    assert abs(mean - cond.mean) < 1e-6 * sd, (mean, cond.mean)
    assert abs(var / cond.var - 1) < 1e-5, (var, cond.var)


def test_held_flags_are_part_of_the_columns():
    d, h = tiny_design(), held_design()
    assert not d.same_columns(h) and h.same_columns(h.with_y(np.ones(h.n)))
    assert h.expanded().same_columns(FMDesign(h.y, h.expanded().X, (), h.groups, h.linear, h.factored))
    with pytest.raises(ValueError, match="one bool per group"):
        FMDesign(d.y, d.X, d.blocks, d.groups, linear=np.ones(3, bool))


def test_design_helpers():
    m = csr_from_triplets([0, 2, 0, 2], [1, 0, 1, 2], [1.0, 2.0, 3.0, 4.0], (3, 3))
    np.testing.assert_array_equal(m.toarray(), [[0, 4, 0], [0, 0, 0], [2, 0, 4]])
    np.testing.assert_array_equal(one_hot([1, -1, 0], 2).toarray(), [[0, 1], [0, 0], [1, 0]])
    r = row_normalised([0, 0, 0, 1], [0, 2, 2, 1], (2, 3))
    np.testing.assert_allclose(r.toarray(), [[2 ** -0.5, 0, 2 ** -0.5], [0, 1, 0]])
    np.testing.assert_array_equal(m.take_rows([2, 0]).toarray(), m.toarray()[[2, 0]])
    with pytest.raises(ValueError):
        CSR([0, 1], [5], [1.0], (1, 3))
    d = FMDesign(np.zeros(3), m, (RelationBlock([1, 0, 1], r),))
    assert d.p == 6 and list(d.groups) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(d.expanded().X.toarray()[:, 3:], r.toarray()[[1, 0, 1]])


# ------------------------------------------------------------------- 5. GroupLens u1

def test_feature_set_timesvdpp_flipped_written_out_by_hand():
    """Per rating: [day one-hot (train days) | user one-hot, N(u)/sqrt|N(u)| | item one-hot,
    N(i)/sqrt|N(i)|], N from TRAIN only; test ratings get the same columns."""
    rng = np.random.default_rng(9)
    nu, ni = 5, 4
    tr = (rng.integers(0, nu, 30), rng.integers(0, ni, 30), rng.integers(1, 6, 30).astype(float),
          rng.integers(0, 6, 30) * 86400 + 5)
    te = (rng.integers(0, nu, 8), rng.integers(0, ni, 8), np.ones(8), rng.integers(0, 8, 8) * 86400)
    d_tr, d_te = feature_set("timesvdpp-flipped", tr, te, nu, ni)
    days = np.unique(tr[3] // 86400)
    Nu = [sorted(set(tr[1][tr[0] == u])) for u in range(nu)]
    Ni = [sorted(set(tr[0][tr[1] == i])) for i in range(ni)]

    def by_hand(split):
        out = np.zeros((len(split[0]), len(days) + 2 * (nu + ni)))
        for n, (u, i, t) in enumerate(zip(split[0], split[1], split[3])):
            hit = np.flatnonzero(days == t // 86400)
            if len(hit):
                out[n, hit[0]] = 1
            base = len(days)
            out[n, base + u] = 1
            for j in Nu[u]:
                out[n, base + nu + j] = 1 / math.sqrt(len(Nu[u]))
            base += nu + ni
            out[n, base + i] = 1
            for v in Ni[i]:
                out[n, base + ni + v] = 1 / math.sqrt(len(Ni[i]))
        return out
    np.testing.assert_allclose(dense_of(d_tr), by_hand(tr), rtol=1e-15)
    np.testing.assert_allclose(dense_of(d_te), by_hand(te), rtol=1e-15)
    assert list(np.bincount(d_tr.groups)) == [len(days), nu, ni, ni, nu]
    assert d_tr.same_columns(d_te)


def u1_mf_designs(path):
    raw = np.loadtxt(path, dtype=np.int64)
    users = np.unique(raw[:, 0], return_inverse=True)[1]
    items = np.unique(raw[:, 1], return_inverse=True)[1]
    y = raw[:, 2].astype(float)
    test = np.arange(len(y)) < 20_000                      # GroupLens u1: rows 0..19999 in file order
    return feature_set("mf", (users[~test], items[~test], y[~test]), (users[test], items[test], y[test]))


def test_u1_mf_rank10_matches_myfm_accuracy(ml100k_path):
    """myFM (rank 10, 200 sweeps, same features) gets test RMSE 0.907-0.909 on u1."""
    train, test = u1_mf_designs(ml100k_path)
    res = fit_gibbs(train, 10, 200, burn_in=5, seed=0)
    pred = np.clip(predict(res, test), 1, 5)
    rmse = float(np.sqrt(np.mean((pred - test.y) ** 2)))
    assert rmse <= 0.915, rmse
    assert res.history.train_rmse[-1] < 0.85
