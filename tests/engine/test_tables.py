"""Named parameter tables in one arena."""
import numpy as np
import pytest

from mfcore.engine.tables import ParameterTables, TableSpec
from mfcore.errors import ModelError


def _tables():
    specs = [TableSpec("users", 3, 2, init="normal", scale=0.1, l2=[0.5, 0.0]),
             TableSpec("items", 4, 3, init="zeros", l2=0.1, l2_mode="per-sample"),
             TableSpec("user_day", 5, 1, init="constant", scale=1.0, center=1.0, lr_scale=0.5)]
    return specs, ParameterTables.initialise(specs, np.random.default_rng(0))


def test_arena_layout_views_and_per_column_settings():
    specs, tables = _tables()
    a = tables.arena
    assert tables.names == ["users", "items", "user_day"]
    np.testing.assert_array_equal(a.off, [0, 6, 18])
    np.testing.assert_array_equal(a.gid, [0, 3, 7])
    np.testing.assert_array_equal(a.coff, [0, 2, 5])
    assert tables.n_rows == 12 and tables.size == 23
    users = tables.view("users")
    users[1, 0] = 42.0  # a view: writes reach the arena
    assert a.W[2] == 42.0
    assert np.all(tables.view("items") == 0) and np.all(tables.view("user_day") == 1)
    np.testing.assert_array_equal(a.l2k, np.float32([0.5, 0, 0, 0, 0, 0]))
    np.testing.assert_array_equal(a.l2s, np.float32([0, 0, 0.1, 0.1, 0.1, 0]))
    np.testing.assert_array_equal(a.center, [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(a.lr_scale, [1, 1, 1, 1, 1, 0.5])
    np.testing.assert_array_equal(tables.table_has_keras_l2(), [True, False, False])
    assert tables.any_l2("keras") and tables.any_l2("per-sample")
    W = tables.view("users").astype(np.float64)
    assert tables.keras_penalty() == pytest.approx(np.float32(0.5) * np.sum(W[:, 0] ** 2))


def test_initialisation_draws_in_declaration_order():
    """A table's draws come from the shared generator in order, as Keras' layers do."""
    _, tables = _tables()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(tables.view("users"),
                                  rng.normal(0, 0.1, (3, 2)).astype(np.float32))


def test_bad_specs_raise():
    with pytest.raises(ModelError, match="unique"):
        ParameterTables([TableSpec("a", 1, 1), TableSpec("a", 2, 1)])
    with pytest.raises(ModelError, match="l2 needs one value or 3"):
        TableSpec("a", 2, 3, l2=[1.0, 2.0])
    with pytest.raises(ModelError, match="non-negative"):
        TableSpec("a", 2, 1, l2=-1.0)
    with pytest.raises(ModelError, match="init"):
        TableSpec("a", 2, 1, init="xavier")
    _, tables = _tables()
    with pytest.raises(ModelError, match="no table 'bins'"):
        tables.view("bins")


def test_float64_copy_for_gradient_checks():
    _, tables = _tables()
    t64 = tables.with_dtype(np.float64)
    assert t64.arena.W.dtype == np.float64
    np.testing.assert_array_equal(t64.view("users"), tables.view("users"))
