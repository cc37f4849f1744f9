"""Neural and mixed models: ``linear``, ``nn``, ``residual``, ``mixed-bias``,
``mixed-interaction`` -- one kernel, configured by ``spec``.

Every one of these models predicts::

    z = [dot] + [mlp output] + [b_u + b_i]        y_hat = z  or  scale * sigmoid(z)

where

- the *MLP* is a layer program (:mod:`.mlp`) whose input tensors are filled, per sample,
  with columns of ``U[u]`` and ``I[i]``: ``ws[in_u + j] = U[u, u_col + j]`` (``j <
  u_len``) and ``ws[in_i + j] = I[i, i_col + j]``. Concatenation ``[e_u, e_m]`` is
  ``in_i = in_u + u_len``; two towers use separate tensors;
- *dot* is either ``U[u, du:du+L] . I[i, di:di+L]`` (mode 1, mixed-bias' ``e_u . e_m``) or
  the dot product of two program tensors (mode 2, mixed-interaction's ``T(e_u) . T'(e_m)``);
- the scalar biases are columns of ``U`` and ``I``.

Backward for the batch mean of ``(y_hat - y)^2``: ``d = 2 (y_hat - y)/n * dy_hat/dz``; dot
mode 1 adds ``d q`` / ``d p`` to the table rows, mode 2 adds ``d T'(e_m)`` / ``d T(e_u)`` to
the tower outputs' gradients, the MLP output's gradient gets ``d``, biases get ``d``; the
program's backward pass then yields the input tensors' gradients, which are scattered into
``GU[b, u_col:]`` and ``GI[b, i_col:]``.

spec = ``[p0, in_u, u_col, u_len, in_i, i_col, i_len, dot_mode, du, di, dot_len, out_t,
bias_u, bias_i, sigmoid]`` then the program at ``p0``; fspec = ``[scale, program floats...]``.
"""

from numba import njit

from .output import output

from . import mlp

H_P0 = 0
H_IN_U, H_U_COL, H_U_LEN = 1, 2, 3
H_IN_I, H_I_COL, H_I_LEN = 4, 5, 6
H_DOT_MODE, H_DOT_U, H_DOT_I, H_DOT_LEN = 7, 8, 9, 10
H_OUT = 11
H_BIAS_U, H_BIAS_I = 12, 13
H_SIGMOID = 14
HEADER_LEN = 15

DOT_NONE = 0
DOT_TABLES = 1
DOT_TENSORS = 2


@njit(cache=True, inline="always")
def _row_base(spec, p0, b):
    return spec[p0 + 2] + b * 2 * spec[p0 + 1]


@njit(cache=True)
def _gather(spec, U, I, users, items, n, ws):
    p0 = spec[H_P0]
    in_u, uc, ul = spec[H_IN_U], spec[H_U_COL], spec[H_U_LEN]
    in_i, ic, il = spec[H_IN_I], spec[H_I_COL], spec[H_I_LEN]
    for b in range(n):
        base = _row_base(spec, p0, b)
        u = users[b]
        i = items[b]
        for j in range(ul):
            ws[base + in_u + j] = U[u, uc + j]
        for j in range(il):
            ws[base + in_i + j] = I[i, ic + j]


@njit(cache=True, inline="always")
def _z(spec, U, I, u, i, ws, base):
    mode = spec[H_DOT_MODE]
    du, di, dl = spec[H_DOT_U], spec[H_DOT_I], spec[H_DOT_LEN]
    z = 0.0
    if mode == DOT_TABLES:
        for f in range(dl):
            z += U[u, du + f] * I[i, di + f]
    elif mode == DOT_TENSORS:
        for f in range(dl):
            z += ws[base + du + f] * ws[base + di + f]
    if spec[H_OUT] >= 0:
        z += ws[base + spec[H_OUT]]
    if spec[H_BIAS_U] >= 0:
        z += U[u, spec[H_BIAS_U]]
    if spec[H_BIAS_I] >= 0:
        z += I[i, spec[H_BIAS_I]]
    return z


@njit(cache=True)
def forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                     GU, GI, gtheta, ws, seed, step, training):
    p0 = spec[H_P0]
    wa = spec[p0 + 1]
    sig = spec[H_SIGMOID] != 0
    scale = fspec[0]
    _gather(spec, U, I, users, items, n, ws)
    mlp.forward(spec, p0, fspec, theta, state, ws, n, seed, step, training)
    mlp.zero_grads(spec, p0, ws, n)
    mode = spec[H_DOT_MODE]
    du, di, dl = spec[H_DOT_U], spec[H_DOT_I], spec[H_DOT_LEN]
    out_t, bu, bi = spec[H_OUT], spec[H_BIAS_U], spec[H_BIAS_I]
    two_over_n = 2.0 / n
    sse = 0.0
    for b in range(n):
        base = _row_base(spec, p0, b)
        u = users[b]
        i = items[b]
        z = _z(spec, U, I, u, i, ws, base)
        p, dp = output(z, sig, scale)
        err = p - y[b]
        sse += err * err
        d = two_over_n * err * dp
        if mode == DOT_TABLES:
            for f in range(dl):
                pu = U[u, du + f]
                GU[b, du + f] += d * I[i, di + f]
                GI[b, di + f] += d * pu
        elif mode == DOT_TENSORS:
            g = base + wa
            for f in range(dl):
                ws[g + du + f] += d * ws[base + di + f]
                ws[g + di + f] += d * ws[base + du + f]
        if out_t >= 0:
            ws[base + wa + out_t] += d
        if bu >= 0:
            GU[b, bu] += d
        if bi >= 0:
            GI[b, bi] += d
    mlp.backward(spec, p0, fspec, theta, gtheta, ws, n)
    in_u, uc, ul = spec[H_IN_U], spec[H_U_COL], spec[H_U_LEN]
    in_i, ic, il = spec[H_IN_I], spec[H_I_COL], spec[H_I_LEN]
    for b in range(n):
        g = _row_base(spec, p0, b) + wa
        u = users[b]
        i = items[b]
        for j in range(ul):
            GU[b, uc + j] += ws[g + in_u + j]
        for j in range(il):
            GI[b, ic + j] += ws[g + in_i + j]
    return sse


@njit(cache=True)
def predict(spec, fspec, U, I, theta, state, users, items, n, out, ws):
    p0 = spec[H_P0]
    sig = spec[H_SIGMOID] != 0
    scale = fspec[0]
    _gather(spec, U, I, users, items, n, ws)
    mlp.forward(spec, p0, fspec, theta, state, ws, n, 0, 0, False)
    for b in range(n):
        z = _z(spec, U, I, users[b], items[b], ws, _row_base(spec, p0, b))
        out[b] = output(z, sig, scale)[0]


@njit(cache=True)
def tensor_values(spec, fspec, U, I, theta, state, users, items, n, ws, t, dim, out):
    """Inference forward for ``n`` pairs; copy tensor ``t`` (``dim`` units) into
    ``out[:n]`` (used for the item tower's output embeddings)."""
    p0 = spec[H_P0]
    _gather(spec, U, I, users, items, n, ws)
    mlp.forward(spec, p0, fspec, theta, state, ws, n, 0, 0, False)
    for b in range(n):
        base = _row_base(spec, p0, b)
        for j in range(dim):
            out[b, j] = ws[base + t + j]
