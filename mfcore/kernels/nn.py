"""Neural and mixed models: ``linear``, ``nn``, ``residual``, ``mixed-bias``,
``mixed-interaction`` -- one kernel, configured by ``spec``.

Every one of these models predicts::

    z = [dot] + [mlp output] + [b_u + b_i]        y_hat = z  or  scale * sigmoid(z)

where

- the *MLP* is a layer program (:mod:`.mlp`) whose input tensors are filled, per sample,
  with columns of the user row and the item row (tables ``users`` t=0 and ``items``
  t=1): tensor ``in_u`` unit ``j`` = user column ``u_col + j`` (``j < u_len``), likewise
  ``in_i``/``i_col``/``i_len``. Concatenation ``[e_u, e_m]`` is ``in_i = in_u + u_len``;
  two towers use separate tensors;
- *dot* is either ``users[u, dot_u : dot_u+L] . items[i, dot_i : dot_i+L]`` (mode
  ``DOT_TABLES``, mixed-bias' ``e_u . e_m``) or the dot product of two program tensors
  ``dot_u`` and ``dot_i`` (mode ``DOT_TENSORS``, mixed-interaction's ``T(e_u) . T'(e_m)``);
- the scalar biases are columns ``bias_u``/``bias_i`` of the tables (-1: none); ``out`` is
  the program tensor added to ``z`` (-1: none);
- time inputs (``--time-features``, -1: none): tensor units ``in_t .. in_t+t_len-1`` are the
  row of table ``time_bins`` (t=2) of the rating's time bin (record column ``BIN``); units
  ``in_ud .. in_ud+ud_len-1`` the row of table ``user_days`` (t=3) of the rating's (user,
  day) (record column ``UD``; -1, a pair training never had: zeros, and no gradient); unit
  ``in_dev`` is the rating's scaled drift ``dev_u(t)`` (record column ``DEV``). Bin and
  user-day rows get their gradients like the user and item rows; the drift is data.

Backward for the batch mean of ``(y_hat - y)^2``: ``d = 2 (y_hat - y)/n * dy_hat/dz``; dot
mode ``DOT_TABLES`` adds ``d q`` / ``d p`` to the rows' gradients, ``DOT_TENSORS`` adds
``d T'(e_m)`` / ``d T(e_u)`` to the tower outputs' gradients, the MLP output's gradient
gets ``d``, biases get ``d``; the program's backward pass then yields the input tensors'
gradients, which join the rows' gradients before they are emitted.

``spec``: the header :data:`HEAD` (``p0`` = where the program starts) then the program;
``fspec = [scale, program floats...]``. Workspace: the program's (see
:class:`mlp.ProgramBuilder`) plus one staged row gradient per sample and table, after the
batch's program rows.
"""

from numba import njit

from ..engine.contract import emit, touch as touch_row
from ..engine.samples import ITEM, RATING, USER
from ..engine.tables import view
from ..layout import fields
from . import CORE, mlp
from .output import output

USERS, ITEMS, TIMES, UDAYS = 0, 1, 2, 3
#: record columns of the time inputs (models with time features)
BIN, DEV, UD = 3, 4, 5
HEAD = fields("NNHead", "p0 in_u u_col u_len in_i i_col i_len dot_mode dot_u dot_i dot_len "
                        "out bias_u bias_i sigmoid in_t t_len in_dev in_ud ud_len")
#: fields of the head in mfcore 0.1.0 (up to ``sigmoid``; version-1 model files)
V1_HEAD_LEN = 15

DOT_NONE = 0
DOT_TABLES = 1
DOT_TENSORS = 2


@njit(**CORE, inline="always")
def _row_base(spec, p0, b):
    return spec[p0 + mlp.PROGRAM.scratch] + b * 2 * spec[p0 + mlp.PROGRAM.width]


@njit(**CORE, inline="always")
def _copy(src, dst):
    for j in range(dst.size):
        dst[j] = src[j]


@njit(**CORE, inline="always")
def _add_into(src, dst):
    for j in range(dst.size):
        dst[j] += src[j]


@njit(**CORE)
def _gather(T, spec, S, start, n, ws):
    p0 = spec[HEAD.p0]
    in_u, uc, ul = spec[HEAD.in_u], spec[HEAD.u_col], spec[HEAD.u_len]
    in_i, ic, il = spec[HEAD.in_i], spec[HEAD.i_col], spec[HEAD.i_len]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    # every loop below runs over slice views: offset indexing (``ws[base + j]`` with a
    # run-time ``base``) gets Numba's negative-index test on every access and defeats
    # LLVM's vectoriser (see mlp.forward)
    for b in range(n):
        base = _row_base(spec, p0, b)
        u = S.X[start + b, USER]
        i = S.X[start + b, ITEM]
        _copy(U[u, uc:uc + ul], ws[base + in_u:base + in_u + ul])
        _copy(I[i, ic:ic + il], ws[base + in_i:base + in_i + il])
    in_t, tl, in_dev = spec[HEAD.in_t], spec[HEAD.t_len], spec[HEAD.in_dev]
    if in_t >= 0:
        B = view(T.W, T, TIMES)
        for b in range(n):
            base = _row_base(spec, p0, b)
            t = S.X[start + b, BIN]
            _copy(B[t, :tl], ws[base + in_t:base + in_t + tl])
    if in_dev >= 0:
        for b in range(n):
            ws[_row_base(spec, p0, b) + in_dev] = S.Xf[start + b, DEV]
    in_ud, udl = spec[HEAD.in_ud], spec[HEAD.ud_len]
    if in_ud >= 0:
        D = view(T.W, T, UDAYS)
        for b in range(n):
            base = _row_base(spec, p0, b)
            r = S.X[start + b, UD]
            for j in range(udl):
                ws[base + in_ud + j] = D[r, j] if r >= 0 else 0.0


@njit(**CORE, inline="always")
def _z(spec, U, I, u, i, ws, base):
    """``z`` of one sample (user ``u``, item ``i``)."""
    mode = spec[HEAD.dot_mode]
    du, di, dl = spec[HEAD.dot_u], spec[HEAD.dot_i], spec[HEAD.dot_len]
    z = 0.0
    if mode == DOT_TABLES:
        for f in range(dl):
            z += U[u, du + f] * I[i, di + f]
    elif mode == DOT_TENSORS:
        for f in range(dl):
            z += ws[base + du + f] * ws[base + di + f]
    if spec[HEAD.out] >= 0:
        z += ws[base + spec[HEAD.out]]
    if spec[HEAD.bias_u] >= 0:
        z += U[u, spec[HEAD.bias_u]]
    if spec[HEAD.bias_i] >= 0:
        z += I[i, spec[HEAD.bias_i]]
    return z


@njit(**CORE)
def touch(T, P, S, start, n, K):
    for j in range(start, start + n):
        touch_row(T, K, USERS, S.X[j, USER])
        touch_row(T, K, ITEMS, S.X[j, ITEM])
    if P.spec[HEAD.in_t] >= 0:
        for j in range(start, start + n):
            touch_row(T, K, TIMES, S.X[j, BIN])
    if P.spec[HEAD.in_ud] >= 0:
        for j in range(start, start + n):
            if S.X[j, UD] >= 0:
                touch_row(T, K, UDAYS, S.X[j, UD])


@njit(**CORE)
def forward_backward(T, P, S, start, n, R, ws, seed, step, training):
    spec, fspec, theta = P.spec, P.fspec, P.theta
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    p0 = spec[HEAD.p0]
    wa = spec[p0 + mlp.PROGRAM.width]
    sig = spec[HEAD.sigmoid] != 0
    scale = fspec[0]
    cu, ci = T.cols[USERS], T.cols[ITEMS]
    in_t, tl = spec[HEAD.in_t], spec[HEAD.t_len]
    ct = tl if in_t >= 0 else 0
    in_ud, udl = spec[HEAD.in_ud], spec[HEAD.ud_len]
    cd = udl if in_ud >= 0 else 0
    rc = cu + ci + ct + cd
    stage = _row_base(spec, p0, n)  # per-sample row gradients: users, items[, time bins]
    _gather(T, spec, S, start, n, ws)
    mlp.forward(spec, p0, fspec, theta, P.state, ws, n, seed, step, training)
    mlp.zero_grads(spec, p0, ws, n)
    staged = ws[stage:stage + n * rc]
    for j in range(staged.size):
        staged[j] = 0.0
    mode = spec[HEAD.dot_mode]
    du, di, dl = spec[HEAD.dot_u], spec[HEAD.dot_i], spec[HEAD.dot_len]
    out_t, bu, bi = spec[HEAD.out], spec[HEAD.bias_u], spec[HEAD.bias_i]
    two_over_n = 2.0 / n
    sse = 0.0
    for b in range(n):
        base = _row_base(spec, p0, b)
        u = S.X[start + b, USER]
        i = S.X[start + b, ITEM]
        gu = stage + b * rc
        gi = gu + cu
        z = _z(spec, U, I, u, i, ws, base)
        p, dp = output(z, sig, scale)
        err = p - S.Xf[start + b, RATING]
        sse += err * err
        d = two_over_n * err * dp
        if mode == DOT_TABLES:
            pu, qi = U[u, du:du + dl], I[i, di:di + dl]
            gpu, gqi = ws[gu + du:gu + du + dl], ws[gi + di:gi + di + dl]
            for f in range(dl):
                p = pu[f]
                gpu[f] += d * qi[f]
                gqi[f] += d * p
        elif mode == DOT_TENSORS:
            g = base + wa
            xu, xi = ws[base + du:base + du + dl], ws[base + di:base + di + dl]
            gxu, gxi = ws[g + du:g + du + dl], ws[g + di:g + di + dl]
            for f in range(dl):
                gxu[f] += d * xi[f]
                gxi[f] += d * xu[f]
        if out_t >= 0:
            ws[base + wa + out_t] += d
        if bu >= 0:
            ws[gu + bu] += d
        if bi >= 0:
            ws[gi + bi] += d
    mlp.backward(spec, p0, fspec, theta, R.gtheta, ws, n)
    in_u, uc, ul = spec[HEAD.in_u], spec[HEAD.u_col], spec[HEAD.u_len]
    in_i, ic, il = spec[HEAD.in_i], spec[HEAD.i_col], spec[HEAD.i_len]
    for b in range(n):
        g = _row_base(spec, p0, b) + wa
        gu = stage + b * rc
        gi = gu + cu
        _add_into(ws[g + in_u:g + in_u + ul], ws[gu + uc:gu + uc + ul])
        _add_into(ws[g + in_i:g + in_i + il], ws[gi + ic:gi + ic + il])
        _add_into(ws[g + in_t:g + in_t + ct], ws[gi + ci:gi + ci + ct])
        _add_into(ws[g + in_ud:g + in_ud + cd], ws[gi + ci + ct:gi + ci + ct + cd])
        emit(T, R, USERS, S.X[start + b, USER], ws[gu:gu + cu])
    for b in range(n):
        gi = stage + b * rc + cu
        emit(T, R, ITEMS, S.X[start + b, ITEM], ws[gi:gi + ci])
    if ct > 0:
        for b in range(n):
            gt = stage + b * rc + cu + ci
            emit(T, R, TIMES, S.X[start + b, BIN], ws[gt:gt + ct])
    if cd > 0:
        for b in range(n):
            r = S.X[start + b, UD]
            if r >= 0:
                gd = stage + b * rc + cu + ci + ct
                emit(T, R, UDAYS, r, ws[gd:gd + cd])
    return sse


@njit(**CORE)
def predict(T, P, S, start, n, out, ws):
    spec = P.spec
    p0 = spec[HEAD.p0]
    sig = spec[HEAD.sigmoid] != 0
    scale = P.fspec[0]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    _gather(T, spec, S, start, n, ws)
    mlp.forward(spec, p0, P.fspec, P.theta, P.state, ws, n, 0, 0, False)
    for b in range(n):
        z = _z(spec, U, I, S.X[start + b, USER], S.X[start + b, ITEM], ws,
               _row_base(spec, p0, b))
        out[b] = output(z, sig, scale)[0]


@njit(**CORE)
def tensor_values(T, P, S, start, n, ws, t, dim, out):
    """Inference forward for records ``start .. start+n-1``; copy tensor ``t`` (``dim``
    units) into ``out[:n]`` (used for the item tower's output embeddings)."""
    spec = P.spec
    p0 = spec[HEAD.p0]
    _gather(T, spec, S, start, n, ws)
    mlp.forward(spec, p0, P.fspec, P.theta, P.state, ws, n, 0, 0, False)
    for b in range(n):
        base = _row_base(spec, p0, b)
        for j in range(dim):
            out[b, j] = ws[base + t + j]


def workspace_size(program_size, batch, row_cols):
    """Floats of scratch for ``batch`` samples: the program's plus the staged row
    gradients (``row_cols`` = user + item [+ time-bin + user-day] columns per sample)."""
    return program_size + max(1, batch) * row_cols
