"""The layer-program interpreter: Keras' batch norm and dropout, named records."""
import numpy as np

from mfcore.kernels import mlp
from mfcore.layout import unpack


def _forward(builder, x, theta, state, training, seed=0, step=1):
    spec = builder.program()
    n, d = x.shape
    ws = np.zeros(builder.workspace_size(n))
    row = 2 * builder.wa
    for b in range(n):
        ws[builder.scratch + b * row: builder.scratch + b * row + d] = x[b]
    mlp.forward(spec, 0, builder.fspec(), theta, state, ws, n, seed, step, training)
    return ws, row


def test_batch_norm_matches_keras_formula():
    b = mlp.ProgramBuilder()
    x_t = b.tensor(3)
    y_t = b.batch_norm(x_t, 3, momentum=0.99, epsilon=1e-3)
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (7, 3))
    theta = np.zeros(b.n_theta)
    b.init_theta(theta, rng)
    theta[:3] = [1.5, 0.5, 2.0]
    theta[3:] = [0.1, -0.2, 0.3]
    state = np.zeros(b.n_state)
    b.init_state(state)
    ws, row = _forward(b, x, theta, state, True)
    mean, var = x.mean(0), x.var(0)  # biased variance, as Keras 3
    want = theta[:3] * (x - mean) / np.sqrt(var + 1e-3) + theta[3:]
    got = np.array([ws[b.scratch + i * row + y_t: b.scratch + i * row + y_t + 3] for i in range(7)])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(state[:3], 0.01 * mean)
    np.testing.assert_allclose(state[3:], 0.99 + 0.01 * var)
    ws, row = _forward(b, x, theta, state, False)  # inference: moving averages
    want = theta[:3] * (x - state[:3]) / np.sqrt(state[3:] + 1e-3) + theta[3:]
    got = np.array([ws[b.scratch + i * row + y_t: b.scratch + i * row + y_t + 3] for i in range(7)])
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_dropout_is_inverted_and_deterministic():
    b = mlp.ProgramBuilder()
    x_t = b.tensor(50)
    y_t = b.dropout(x_t, 50, 0.4)
    x = np.ones((200, 50))
    th, st = np.zeros(0), np.zeros(0)
    ws, row = _forward(b, x, th, st, True, seed=3, step=7)
    y = np.array([ws[i * row + y_t: i * row + y_t + 50] for i in range(200)])
    assert set(np.round(np.unique(y), 12)) == {0.0, round(1 / 0.6, 12)}
    assert abs((y > 0).mean() - 0.6) < 0.02
    ws2, _ = _forward(b, x, th, st, True, seed=3, step=7)
    np.testing.assert_array_equal(ws, ws2)
    ws3, _ = _forward(b, x, th, st, True, seed=3, step=8)
    assert not np.array_equal(ws, ws3)
    ws4, _ = _forward(b, x, th, st, False)
    y = np.array([ws4[i * row + y_t: i * row + y_t + 50] for i in range(200)])
    np.testing.assert_array_equal(y, x)


def test_records_are_named_and_describe_reads_them():
    b = mlp.ProgramBuilder()
    x = b.tensor(4)
    h = b.dense(x, 4, 3, "tanh")
    h = b.dropout(h, 3, 0.25)
    h = b.batch_norm(h, 3)
    y = b.add(h, h, 3, "relu")
    spec = b.program()
    head = unpack(mlp.PROGRAM, spec)
    assert head == {"n_ops": 4, "width": b.wa, "scratch": b.scratch}
    recs = mlp.records(spec, 0)
    assert [r["op"] for r in recs] == [mlp.OP_DENSE, mlp.OP_DROPOUT, mlp.OP_BN, mlp.OP_ADD]
    assert recs[0]["nin"] == 4 and recs[0]["nout"] == 3 and recs[0]["has_bias"] == 1
    assert recs[3]["y"] == y and recs[3]["d"] == 3
    assert mlp.describe(spec, 0, b.fspec()) == [("dense", 4, 3, "tanh", True), ("dropout", 0.25),
                                               ("batch_norm", 3), ("add", 3, "relu")]
