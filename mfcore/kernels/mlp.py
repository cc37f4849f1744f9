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

Program layout in ``spec``: ``[n_ops, Wa, S]`` then ``n_ops`` records of ``OPW`` ints:

``OP_DENSE``   ``[1, x, in, y, out, w, act, has_bias]``  ``y = act(W x + c)``; ``W`` is
               ``theta[w : w + out*in]`` stored (out, in) row-major, ``c`` follows it.
``OP_DROPOUT`` ``[2, x, d, y, mask, f_rate, salt]``  inverted dropout (training only):
               unit kept with probability ``1 - rate`` (uniform from
               :func:`rng.uniform` ``(seed, step, sample, salt*65536 + unit) >= rate``),
               kept units scaled by ``1/(1 - rate)``; the scale (0 or 1/(1-rate)) is kept in
               tensor ``mask`` for the backward pass. Identity at inference.
``OP_BN``      ``[3, x, d, y, xhat, gb, st, g, f_mom]``  Keras 3 BatchNormalization:
               training ``y = gamma (x - mean_B) / sqrt(var_B + eps) + beta`` with the batch
               mean and *biased* batch variance, and ``moving = moving*momentum +
               batch*(1 - momentum)`` for mean and variance (``state[st : st+d]``,
               ``state[st+d : st+2d]``); inference uses the moving averages. ``gamma``,
               ``beta`` are ``theta[gb : gb+d]``, ``theta[gb+d : gb+2d]``; ``fspec[f_mom]``,
               ``fspec[f_mom+1]`` are momentum and epsilon.
``OP_ADD``     ``[4, a, b, y, d, act]``  ``y = act(a + b)`` (the join of a residual block).

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

from .rng import uniform

OPW = 10
HEADER = 3

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

@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, fastmath=_FAST)
def forward(spec, p0, fspec, theta, state, ws, n, seed, step, training):
    """Run the program at ``spec[p0:]`` forward over samples ``0..n-1`` of ``ws``."""
    n_ops = spec[p0]
    wa = spec[p0 + 1]
    s0 = spec[p0 + 2]
    row = 2 * wa
    for o in range(n_ops):
        r = p0 + HEADER + o * OPW
        op = spec[r]
        if op == OP_DENSE:
            x, nin, y, nout, w, a, hb = (spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4],
                                         spec[r + 5], spec[r + 6], spec[r + 7])
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
            x, d, y, mk, fr, salt = (spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4],
                                     spec[r + 5], spec[r + 6])
            rate = fspec[fr]
            keep_scale = 1.0 / (1.0 - rate)
            for b in range(n):
                base = s0 + b * row
                if training:
                    for j in range(d):
                        m = keep_scale if uniform(seed, step, b, salt * 65536 + j) >= rate \
                            else 0.0
                        ws[base + mk + j] = m
                        ws[base + y + j] = ws[base + x + j] * m
                else:
                    for j in range(d):
                        ws[base + y + j] = ws[base + x + j]
        elif op == OP_BN:
            x, d, y, xh, gb, st, g, fm = (spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4],
                                          spec[r + 5], spec[r + 6], spec[r + 7], spec[r + 8])
            mom = fspec[fm]
            eps = fspec[fm + 1]
            for j in range(d):
                gamma = theta[gb + j]
                beta = theta[gb + d + j]
                if training:
                    mean = 0.0
                    for b in range(n):
                        mean += ws[s0 + b * row + x + j]
                    mean /= n
                    var = 0.0
                    for b in range(n):
                        t = ws[s0 + b * row + x + j] - mean
                        var += t * t
                    var /= n
                    state[st + j] = state[st + j] * mom + mean * (1.0 - mom)
                    state[st + d + j] = state[st + d + j] * mom + var * (1.0 - mom)
                else:
                    mean = float(state[st + j])
                    var = float(state[st + d + j])
                inv = 1.0 / math.sqrt(var + eps)
                ws[g + j] = inv
                for b in range(n):
                    base = s0 + b * row
                    xhat = (ws[base + x + j] - mean) * inv
                    ws[base + xh + j] = xhat
                    ws[base + y + j] = gamma * xhat + beta
        elif op == OP_ADD:
            xa, xb_, y, d, a = spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4], spec[r + 5]
            for b in range(n):
                base = s0 + b * row
                for j in range(d):
                    ws[base + y + j] = _act(a, ws[base + xa + j] + ws[base + xb_ + j])


@njit(cache=True)
def zero_grads(spec, p0, ws, n):
    """Zero the gradient half of the first ``n`` samples' rows."""
    wa = spec[p0 + 1]
    s0 = spec[p0 + 2]
    row = 2 * wa
    for b in range(n):
        base = s0 + b * row + wa
        for j in range(wa):
            ws[base + j] = 0.0


@njit(cache=True, fastmath=_FAST)
def backward(spec, p0, fspec, theta, gtheta, ws, n):
    """Back-propagate through the program (after a training-mode :func:`forward`)."""
    n_ops = spec[p0]
    wa = spec[p0 + 1]
    s0 = spec[p0 + 2]
    row = 2 * wa
    for o in range(n_ops - 1, -1, -1):
        r = p0 + HEADER + o * OPW
        op = spec[r]
        if op == OP_DENSE:
            x, nin, y, nout, w, a, hb = (spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4],
                                         spec[r + 5], spec[r + 6], spec[r + 7])
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
            x, d, y, mk = spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4]
            for b in range(n):
                base = s0 + b * row
                for j in range(d):
                    ws[base + wa + x + j] += ws[base + wa + y + j] * ws[base + mk + j]
        elif op == OP_BN:
            x, d, y, xh, gb, g = (spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4],
                                  spec[r + 5], spec[r + 7])
            for j in range(d):
                sdy = 0.0
                sdyx = 0.0
                for b in range(n):
                    base = s0 + b * row
                    gy = ws[base + wa + y + j]
                    sdy += gy
                    sdyx += gy * ws[base + xh + j]
                gtheta[gb + j] += sdyx
                gtheta[gb + d + j] += sdy
                c = theta[gb + j] * ws[g + j] / n
                for b in range(n):
                    base = s0 + b * row
                    gy = ws[base + wa + y + j]
                    ws[base + wa + x + j] += c * (n * gy - sdy - ws[base + xh + j] * sdyx)
        elif op == OP_ADD:
            xa, xb_, y, d, a = spec[r + 1], spec[r + 2], spec[r + 3], spec[r + 4], spec[r + 5]
            for b in range(n):
                base = s0 + b * row
                for j in range(d):
                    gj = ws[base + wa + y + j] * _dact(a, ws[base + y + j])
                    ws[base + wa + xa + j] += gj
                    ws[base + wa + xb_ + j] += gj


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

    def _emit(self, *fields):
        rec = [int(f) for f in fields]
        self.ops.append(rec + [0] * (OPW - len(rec)))

    def dense(self, x, nin, nout, activation="linear", bias=True):
        """Keras Dense(nout, activation) with glorot-uniform kernel and zero bias."""
        y = self.tensor(nout)
        w = self._theta(nout * nin, "glorot", nin, nout)
        if bias:
            self._theta(nout, "zeros")
        self._emit(OP_DENSE, x, nin, y, nout, w, ACTIVATIONS[activation], int(bias))
        return y

    def dropout(self, x, d, rate):
        y = self.tensor(d)
        mask = self.tensor(d)
        fr = self._f(rate)
        self._emit(OP_DROPOUT, x, d, y, mask, fr, len(self.ops) + 1)
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
        self._emit(OP_BN, x, d, y, xhat, gb, st, g, fm)
        return y

    def add(self, a, b, d, activation="linear"):
        y = self.tensor(d)
        self._emit(OP_ADD, a, b, y, d, ACTIVATIONS[activation])
        return y

    # ---- results ---------------------------------------------------------------------------
    def program(self):
        """The int64 program (header + records) to place in ``spec``."""
        out = [len(self.ops), self.wa, self.scratch]
        for rec in self.ops:
            out.extend(rec)
        return np.array(out, np.int64)

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


def describe(spec, p0, fspec):
    """The layer sequence of the program at ``spec[p0:]`` as readable tuples:
    ``("dense", in, out, activation, has_bias)``, ``("dropout", rate)``,
    ``("batch_norm", d)``, ``("add", d, activation)``."""
    n_ops = int(spec[p0])
    out = []
    for o in range(n_ops):
        r = p0 + HEADER + o * OPW
        op = int(spec[r])
        if op == OP_DENSE:
            out.append(("dense", int(spec[r + 2]), int(spec[r + 4]),
                        ACTIVATION_NAMES[int(spec[r + 6])], bool(spec[r + 7])))
        elif op == OP_DROPOUT:
            out.append(("dropout", round(float(fspec[spec[r + 5]]), 10)))
        elif op == OP_BN:
            out.append(("batch_norm", int(spec[r + 2])))
        elif op == OP_ADD:
            out.append(("add", int(spec[r + 4]), ACTIVATION_NAMES[int(spec[r + 5])]))
    return out
