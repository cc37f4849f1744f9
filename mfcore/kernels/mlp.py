"""Multi-layer perceptron pieces over a batch: dense layers, activations, inverted dropout,
batch normalisation and residual additions, forward and hand-derived backward.

A network is an integer *layer program* stored inside a model's ``spec`` (from index
``p0``), built in Python with :class:`ProgramBuilder` and interpreted by the compiled
:func:`forward` / :func:`backward`. Every layer reads and writes *tensors*: per-sample
vectors at fixed offsets of the float scratch buffer ``ws``.

Scratch layout (``ws``)::

    ws[0 : S]                     batch-level scratch (batch-norm 1/std per unit)
    ws[S + b*2*Wa + t + j]        tensor t, unit j, of sample b          (activations)
    ws[S + b*2*Wa + Wa + t + j]   d loss / d (tensor t, unit j)          (gradients)

Program layout in ``spec`` (from ``p0``): a header laid out by :data:`PROGRAM`
(``n_ops``, ``width`` = Wa, ``scratch`` = S), then ``n_ops`` records of ``OPW`` ints, each
laid out by the layout of its op (field ``op`` first):

:data:`DENSE`      ``y = act(W x + c)``; ``W`` is ``theta[w : w + nout*nin]`` stored
                   (nout, nin) row-major, ``c`` follows it when ``has_bias``.
:data:`DROPOUT`    inverted dropout (training only): unit kept with probability
                   ``1 - rate`` (uniform from :func:`rng.uniform` ``(seed, step, sample,
                   salt*65536 + unit) >= rate``, ``rate = fspec[rate]``), kept units scaled
                   by ``1/(1 - rate)``; the scale (0 or 1/(1-rate)) is kept in tensor
                   ``mask`` for the backward pass. Identity at inference.
:data:`BATCH_NORM` Keras 3 BatchNormalization: training ``y = gamma (x - mean_B) /
                   sqrt(var_B + eps) + beta`` with the batch mean and *biased* batch
                   variance, and ``moving = moving*momentum + batch*(1 - momentum)`` for
                   mean and variance (``state[st : st+d]``, ``state[st+d : st+2d]``);
                   inference uses the moving averages. ``gamma``, ``beta`` are
                   ``theta[gb : gb+d]``, ``theta[gb+d : gb+2d]``; ``fspec[mom]``,
                   ``fspec[mom+1]`` are momentum and epsilon; ``ws[g : g+d]`` keeps 1/std.
:data:`ADD`        ``y = act(a + b)`` (the join of a residual block).

Activations (``ACT_*``) are differentiated from their *output*, so no pre-activation is
stored: relu ``y > 0``, tanh ``1 - y^2``, sigmoid ``y (1 - y)``, elu ``1 or y + 1``,
leaky relu (slope 0.2, Keras 3's default) ``1 or 0.2``, softplus ``1 - exp(-y)``.

Backward (batch of ``n``; the caller has zeroed the gradient half with :func:`zero_grads`
and written the loss gradient into the output tensors' gradients)::

    dense:   g = gy * act'(y);  gW += g x^T;  gc += g;  gx += W^T g
    dropout: gx += gy * mask
    bn:      ggamma += sum_b gy xhat;  gbeta += sum_b gy;
             gx += gamma / (n sqrt(var + eps)) * (n gy - sum_b gy - xhat sum_b gy xhat)
    add:     g = gy * act'(y);  ga += g;  gb += g

Gradients are *added* into ``gtheta`` and into the input tensors' gradients, so a tensor
feeding several layers (a residual skip) collects all of them.
"""
import math

import numpy as np
from numba import njit

from ..layout import fields, pack, unpack
from . import CORE
from .rng import uniform

#: program header, then records of OPW ints, one layout per op
PROGRAM = fields("Program", "n_ops width scratch")
HEADER = len(PROGRAM)
OPW = 10
DENSE = fields("Dense", "op x nin y nout w act has_bias")
DROPOUT = fields("Dropout", "op x d y mask rate salt")
BATCH_NORM = fields("BatchNorm", "op x d y xhat gb st g mom")
ADD = fields("Add", "op a b y d act")

OP_DENSE = 1
OP_DROPOUT = 2
OP_BN = 3
OP_ADD = 4

ACT_LINEAR = 0
ACT_RELU = 1
ACT_TANH = 2
ACT_SIGMOID = 3
ACT_ELU = 4
ACT_LEAKY_RELU = 5
ACT_SOFTPLUS = 6

ACTIVATIONS = {"linear": ACT_LINEAR, "relu": ACT_RELU, "tanh": ACT_TANH,
               "sigmoid": ACT_SIGMOID, "elu": ACT_ELU, "leaky_relu": ACT_LEAKY_RELU,
               "softplus": ACT_SOFTPLUS}
ACTIVATION_NAMES = {v: k for k, v in ACTIVATIONS.items()}
LEAKY_SLOPE = 0.2


# ---------------------------------------------------------------------------------------
# compiled interpreter
# ---------------------------------------------------------------------------------------

@njit(**CORE, inline="always")
def _act(a, z):
    if a == ACT_LINEAR:
        return z
    if a == ACT_RELU:
        return z if z > 0.0 else 0.0
    if a == ACT_TANH:
        return math.tanh(z)
    if a == ACT_SIGMOID:
        if z >= 0.0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if a == ACT_ELU:
        return z if z > 0.0 else math.expm1(z)
    if a == ACT_LEAKY_RELU:
        return z if z > 0.0 else LEAKY_SLOPE * z
    # softplus
    if z > 30.0:
        return z
    return math.log1p(math.exp(z))


@njit(**CORE, inline="always")
def _dact(a, y):
    """d act / d z, written in terms of the output ``y = act(z)``."""
    if a == ACT_LINEAR:
        return 1.0
    if a == ACT_RELU:
        return 1.0 if y > 0.0 else 0.0
    if a == ACT_TANH:
        return 1.0 - y * y
    if a == ACT_SIGMOID:
        return y * (1.0 - y)
    if a == ACT_ELU:
        return 1.0 if y > 0.0 else y + 1.0
    if a == ACT_LEAKY_RELU:
        return 1.0 if y > 0.0 else LEAKY_SLOPE
    return -math.expm1(-y)


_FAST = {"reassoc", "contract"}


@njit(**CORE, fastmath=_FAST)
def forward(spec, p0, fspec, theta, state, ws, n, seed, step, training):
    """Run the program at ``spec[p0:]`` forward over samples ``0..n-1`` of ``ws``."""
    n_ops = spec[p0 + PROGRAM.n_ops]
    wa = spec[p0 + PROGRAM.width]
    s0 = spec[p0 + PROGRAM.scratch]
    row = 2 * wa
    for o in range(n_ops):
        r = p0 + HEADER + o * OPW
        op = spec[r]
        if op == OP_DENSE:
            x, nin, y, nout = (spec[r + DENSE.x], spec[r + DENSE.nin], spec[r + DENSE.y],
                               spec[r + DENSE.nout])
            w, a, hb = spec[r + DENSE.w], spec[r + DENSE.act], spec[r + DENSE.has_bias]
            cb = w + nout * nin
            for b in range(n):
                base = s0 + b * row
                xb = base + x
                yb = base + y
                xv = ws[xb:xb + nin]
                for j in range(nout):
                    # accumulate in the buffers' own precision (float32 in training, so
                    # the reduction vectorises; float64 under gradcheck), over slice
                    # views: plain offset indexing defeats LLVM's vectoriser
                    ws[yb + j] = theta[cb + j] if hb else 0.0
                    acc = ws[yb + j]
                    wv = theta[w + j * nin:w + (j + 1) * nin]
                    for i in range(nin):
                        acc += xv[i] * wv[i]
                    ws[yb + j] = _act(a, acc)
        elif op == OP_DROPOUT:
            x, d, y = spec[r + DROPOUT.x], spec[r + DROPOUT.d], spec[r + DROPOUT.y]
            mk, salt = spec[r + DROPOUT.mask], spec[r + DROPOUT.salt]
            rate = fspec[spec[r + DROPOUT.rate]]
            keep_scale = 1.0 / (1.0 - rate)
            for b in range(n):
                base = s0 + b * row
                xv, yv = ws[base + x:base + x + d], ws[base + y:base + y + d]
                if training:
                    mv = ws[base + mk:base + mk + d]
                    for j in range(d):
                        m = keep_scale if uniform(seed, step, b, salt * 65536 + j) >= rate \
                            else 0.0
                        mv[j] = m
                        yv[j] = xv[j] * m
                else:
                    for j in range(d):
                        yv[j] = xv[j]
        elif op == OP_BN:
            x, d, y, xh = (spec[r + BATCH_NORM.x], spec[r + BATCH_NORM.d],
                           spec[r + BATCH_NORM.y], spec[r + BATCH_NORM.xhat])
            gb, st, g, fm = (spec[r + BATCH_NORM.gb], spec[r + BATCH_NORM.st],
                             spec[r + BATCH_NORM.g], spec[r + BATCH_NORM.mom])
            mom = fspec[fm]
            eps = fspec[fm + 1]
            rows = ws[s0:s0 + n * row].reshape((n, row))  # column views, see dense
            for j in range(d):
                gamma = theta[gb + j]
                beta = theta[gb + d + j]
                xc = rows[:, x + j]
                if training:
                    mean = 0.0
                    for b in range(n):
                        mean += xc[b]
                    mean /= n
                    var = 0.0
                    for b in range(n):
                        t = xc[b] - mean
                        var += t * t
                    var /= n
                    state[st + j] = state[st + j] * mom + mean * (1.0 - mom)
                    state[st + d + j] = state[st + d + j] * mom + var * (1.0 - mom)
                else:
                    mean = float(state[st + j])
                    var = float(state[st + d + j])
                inv = 1.0 / math.sqrt(var + eps)
                ws[g + j] = inv
                xhc, yc = rows[:, xh + j], rows[:, y + j]
                for b in range(n):
                    xhat = (xc[b] - mean) * inv
                    xhc[b] = xhat
                    yc[b] = gamma * xhat + beta
        elif op == OP_ADD:
            xa, xb_, y = spec[r + ADD.a], spec[r + ADD.b], spec[r + ADD.y]
            d, a = spec[r + ADD.d], spec[r + ADD.act]
            for b in range(n):
                base = s0 + b * row
                av, bv = ws[base + xa:base + xa + d], ws[base + xb_:base + xb_ + d]
                yv = ws[base + y:base + y + d]
                for j in range(d):
                    yv[j] = _act(a, av[j] + bv[j])


@njit(**CORE)
def zero_grads(spec, p0, ws, n):
    """Zero the gradient half of the first ``n`` samples' rows."""
    wa = spec[p0 + PROGRAM.width]
    s0 = spec[p0 + PROGRAM.scratch]
    row = 2 * wa
    for b in range(n):
        base = s0 + b * row + wa
        grad = ws[base:base + wa]  # a slice view: offset indexing does not vectorise
        for j in range(wa):
            grad[j] = 0.0


@njit(**CORE, fastmath=_FAST)
def backward(spec, p0, fspec, theta, gtheta, ws, n):
    """Back-propagate through the program (after a training-mode :func:`forward`)."""
    n_ops = spec[p0 + PROGRAM.n_ops]
    wa = spec[p0 + PROGRAM.width]
    s0 = spec[p0 + PROGRAM.scratch]
    row = 2 * wa
    for o in range(n_ops - 1, -1, -1):
        r = p0 + HEADER + o * OPW
        op = spec[r]
        if op == OP_DENSE:
            x, nin, y, nout = (spec[r + DENSE.x], spec[r + DENSE.nin], spec[r + DENSE.y],
                               spec[r + DENSE.nout])
            w, a, hb = spec[r + DENSE.w], spec[r + DENSE.act], spec[r + DENSE.has_bias]
            cb = w + nout * nin
            for b in range(n):
                base = s0 + b * row
                xb = base + x
                gxb = base + wa + x
                yb = base + y
                gyb = base + wa + y
                xv = ws[xb:xb + nin]
                gxv = ws[gxb:gxb + nin]
                for j in range(nout):
                    if a != ACT_LINEAR:
                        ws[gyb + j] = ws[gyb + j] * _dact(a, ws[yb + j])
                    gj = ws[gyb + j]  # in the buffers' precision, see forward
                    if gj == 0.0:
                        continue
                    if hb:
                        gtheta[cb + j] += gj
                    wv = theta[w + j * nin:w + (j + 1) * nin]
                    gwv = gtheta[w + j * nin:w + (j + 1) * nin]
                    for i in range(nin):
                        gwv[i] += gj * xv[i]
                    for i in range(nin):
                        gxv[i] += gj * wv[i]
        elif op == OP_DROPOUT:
            x, d, y, mk = (spec[r + DROPOUT.x], spec[r + DROPOUT.d], spec[r + DROPOUT.y],
                           spec[r + DROPOUT.mask])
            for b in range(n):
                base = s0 + b * row
                gxv = ws[base + wa + x:base + wa + x + d]
                gyv = ws[base + wa + y:base + wa + y + d]
                mv = ws[base + mk:base + mk + d]
                for j in range(d):
                    gxv[j] += gyv[j] * mv[j]
        elif op == OP_BN:
            x, d, y, xh = (spec[r + BATCH_NORM.x], spec[r + BATCH_NORM.d],
                           spec[r + BATCH_NORM.y], spec[r + BATCH_NORM.xhat])
            gb, g = spec[r + BATCH_NORM.gb], spec[r + BATCH_NORM.g]
            rows = ws[s0:s0 + n * row].reshape((n, row))  # column views, see forward
            for j in range(d):
                gyc, xhc, gxc = rows[:, wa + y + j], rows[:, xh + j], rows[:, wa + x + j]
                sdy = 0.0
                sdyx = 0.0
                for b in range(n):
                    gy = gyc[b]
                    sdy += gy
                    sdyx += gy * xhc[b]
                gtheta[gb + j] += sdyx
                gtheta[gb + d + j] += sdy
                c = theta[gb + j] * ws[g + j] / n
                for b in range(n):
                    gxc[b] += c * (n * gyc[b] - sdy - xhc[b] * sdyx)
        elif op == OP_ADD:
            xa, xb_, y = spec[r + ADD.a], spec[r + ADD.b], spec[r + ADD.y]
            d, a = spec[r + ADD.d], spec[r + ADD.act]
            for b in range(n):
                base = s0 + b * row
                gyv, yv = ws[base + wa + y:base + wa + y + d], ws[base + y:base + y + d]
                gav = ws[base + wa + xa:base + wa + xa + d]
                gbv = ws[base + wa + xb_:base + wa + xb_ + d]
                for j in range(d):
                    gj = gyv[j] * _dact(a, yv[j])
                    gav[j] += gj
                    gbv[j] += gj


# ---------------------------------------------------------------------------------------
# Python side: building programs
# ---------------------------------------------------------------------------------------

class ProgramBuilder:
    """Allocates tensors, weights and state and emits a layer program.

    ``theta_base``/``state_base``/``fspec_base``: where this program's weights, state and
    float settings start in the model's ``theta``, ``state`` and ``fspec`` (a model may put
    its own entries first). Methods return the output tensor's offset.
    """

    def __init__(self, theta_base=0, state_base=0, fspec_base=0):
        self.ops = []
        self.wa = 0
        self.scratch = 0
        self.n_theta = theta_base
        self.n_state = state_base
        self.fvals = []
        self.fbase = fspec_base
        self.theta_init = []   # (kind, offset, size, fan_in, fan_out)
        self.state_init = []   # (value, offset, size)

    def tensor(self, dim):
        off = self.wa
        self.wa += int(dim)
        return off

    def _theta(self, size, kind, fan_in=0, fan_out=0):
        off = self.n_theta
        self.theta_init.append((kind, off, int(size), int(fan_in), int(fan_out)))
        self.n_theta += int(size)
        return off

    def _f(self, *values):
        idx = self.fbase + len(self.fvals)
        self.fvals.extend(float(v) for v in values)
        return idx

    def _emit(self, layout, **values):
        self.ops.append(pack(layout, OPW, **values))

    def dense(self, x, nin, nout, activation="linear", bias=True):
        """Keras Dense(nout, activation) with glorot-uniform kernel and zero bias."""
        y = self.tensor(nout)
        w = self._theta(nout * nin, "glorot", nin, nout)
        if bias:
            self._theta(nout, "zeros")
        self._emit(DENSE, op=OP_DENSE, x=x, nin=nin, y=y, nout=nout, w=w,
                   act=ACTIVATIONS[activation], has_bias=int(bias))
        return y

    def dropout(self, x, d, rate):
        y = self.tensor(d)
        mask = self.tensor(d)
        fr = self._f(rate)
        self._emit(DROPOUT, op=OP_DROPOUT, x=x, d=d, y=y, mask=mask, rate=fr,
                   salt=len(self.ops) + 1)
        return y

    def batch_norm(self, x, d, momentum=0.99, epsilon=1e-3):
        y = self.tensor(d)
        xhat = self.tensor(d)
        gb = self._theta(d, "ones")
        self._theta(d, "zeros")
        st = self.n_state
        self.state_init.append((0.0, st, d))
        self.state_init.append((1.0, st + d, d))
        self.n_state += 2 * d
        g = self.scratch
        self.scratch += d
        fm = self._f(momentum, epsilon)
        self._emit(BATCH_NORM, op=OP_BN, x=x, d=d, y=y, xhat=xhat, gb=gb, st=st, g=g, mom=fm)
        return y

    def add(self, a, b, d, activation="linear"):
        y = self.tensor(d)
        self._emit(ADD, op=OP_ADD, a=a, b=b, y=y, d=d, act=ACTIVATIONS[activation])
        return y

    # ---- results ---------------------------------------------------------------------------
    def program(self):
        """The int64 program (header + records) to place in ``spec``."""
        head = pack(PROGRAM, n_ops=len(self.ops), width=self.wa, scratch=self.scratch)
        return np.concatenate([head] + self.ops).astype(np.int64)

    def fspec(self):
        return np.array(self.fvals, np.float64)

    def init_theta(self, theta, rng):
        """Fill this program's part of ``theta`` (Keras initialisers, in layer order)."""
        for kind, off, size, fan_in, fan_out in self.theta_init:
            if kind == "glorot":
                lim = np.sqrt(6.0 / (fan_in + fan_out))
                theta[off:off + size] = rng.uniform(-lim, lim, size)
            elif kind == "ones":
                theta[off:off + size] = 1.0
            else:
                theta[off:off + size] = 0.0

    def init_state(self, state):
        for value, off, size in self.state_init:
            state[off:off + size] = value

    def workspace_size(self, batch):
        return self.scratch + max(1, batch) * 2 * self.wa


_LAYOUTS = {OP_DENSE: DENSE, OP_DROPOUT: DROPOUT, OP_BN: BATCH_NORM, OP_ADD: ADD}


def records(spec, p0):
    """The program at ``spec[p0:]`` as a list of ``{field: value}`` dicts (one per op,
    named by the op's layout)."""
    n_ops = int(spec[p0 + PROGRAM.n_ops])
    out = []
    for o in range(n_ops):
        r = p0 + HEADER + o * OPW
        layout = _LAYOUTS.get(int(spec[r]))
        if layout is None:
            raise ValueError(f"unknown layer op {int(spec[r])} in program record {o}")
        out.append(unpack(layout, spec, r))
    return out


def describe(spec, p0, fspec):
    """The layer sequence of the program at ``spec[p0:]`` as readable tuples:
    ``("dense", in, out, activation, has_bias)``, ``("dropout", rate)``,
    ``("batch_norm", d)``, ``("add", d, activation)``."""
    out = []
    for rec in records(spec, p0):
        if rec["op"] == OP_DENSE:
            out.append(("dense", rec["nin"], rec["nout"], ACTIVATION_NAMES[rec["act"]],
                        bool(rec["has_bias"])))
        elif rec["op"] == OP_DROPOUT:
            out.append(("dropout", round(float(fspec[rec["rate"]]), 10)))
        elif rec["op"] == OP_BN:
            out.append(("batch_norm", rec["d"]))
        else:
            out.append(("add", rec["d"], ACTIVATION_NAMES[rec["act"]]))
    return out
