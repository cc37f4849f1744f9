"""What a library caller passes by mistake gets a clear mfcore error naming it, on real
ml-100k data: timestamps that are not times, counts below zero, a Series for a DataFrame,
positions outside the data. (The CLI's side: tests/cli/test_cli_bad_input.py.)"""
import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore.data import grouplens_fold
from mfcore.data.ratings import Ratings, seconds_array
from mfcore.errors import DataError, ModelError


@pytest.fixture(scope="module")
def u1(ml100k):
    return grouplens_fold(ml100k, "u1")


@pytest.fixture(scope="module")
def timesvd(u1):
    train, _ = u1
    model = mfcore.create_model("timesvd", factors=2, seed=0)
    model.fit(train, epochs=1, verbose=0)
    return model


def test_seconds_are_read_from_every_usual_spelling_and_nothing_else():
    want = np.array([893286638, 0], np.int64)
    assert seconds_array(want).tolist() == want.tolist()
    assert seconds_array([893286638.9, 0.0]).tolist() == want.tolist()  # rounded down
    assert seconds_array(np.array(["1998-04-22T23:10:38", "1970-01-01"], "datetime64[ns]")) \
        .tolist() == want.tolist()
    assert seconds_array(["1998-04-22T23:10:38", "0"]).tolist() == want.tolist()
    for bad, words in ((float("nan"), "nan is not a finite number"),
                       ([1.0, float("inf")], "inf is not a finite number"),
                       (np.array(["NaT"], "datetime64[s]"), "NaT is not a time"),
                       ("yesterday", "'yesterday' is neither whole seconds")):
        with pytest.raises(ValueError, match=words):
            seconds_array(bad)


def test_a_bad_timestamp_is_named_by_predict_evaluate_and_recommend(timesvd, u1):
    """NaN was cast to -9.2e18 seconds (a warning, then scores for the year -2.9e11) and
    'yesterday' failed inside NumPy."""
    _, test = u1
    users, items = test.user_ids[test.users[:3]], test.item_ids[test.items[:3]]
    with pytest.raises(ModelError, match="nan is not a finite number of seconds"):
        timesvd.predict(users, items, timestamps=[893286638, np.nan, 893286638])
    with pytest.raises(ModelError, match="'yesterday' is neither"):
        timesvd.evaluate(test, timestamp="yesterday")
    with pytest.raises(ModelError, match="nan is not a finite number"):
        timesvd.recommend(users[0], timestamp=float("nan"))
    with pytest.raises(ModelError, match="one time, not a sequence"):
        timesvd.recommend(users[0], timestamp=[893286638, 893286638])
    # the same instant in three spellings scores the same
    one = timesvd.evaluate(test, timestamp=893286638)
    assert timesvd.evaluate(test, timestamp="1998-04-22T23:10:38") == one
    assert timesvd.evaluate(test, timestamp=np.datetime64("1998-04-22T23:10:38")) == one


@pytest.mark.parametrize("n", [-1, 2.5, True, "3"])
def test_recommend_and_similar_items_take_a_count(timesvd, u1, n):
    train, _ = u1
    user, item = train.user_ids[train.users[0]], train.item_ids[train.items[0]]
    with pytest.raises(ModelError, match=r"n must be a whole number >= 0"):
        timesvd.recommend(user, n=n)
    with pytest.raises(ModelError, match=r"n must be a whole number >= 0"):
        timesvd.similar_items(item, n=n)
    assert len(timesvd.recommend(user, n=0)) == 0 and len(timesvd.recommend(user, n=3)) == 3


def test_ratings_refuse_what_is_not_a_table_or_a_time(u1):
    train, _ = u1
    with pytest.raises(DataError, match="takes a pandas DataFrame .* got a Series"):
        mfcore.from_dataframe(train.to_dataframe()["rating"])
    with pytest.raises(DataError, match="timestamp nan is not a finite number"):
        Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0], timestamps=[8e8, float("nan")])
    r = Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0],
                            timestamps=np.array(["1998-04-22", "1998-04-23"], "datetime64[D]"))
    assert r.timestamps.tolist() == [893203200, 893289600]


def test_subset_names_a_position_outside_the_data(u1):
    train, _ = u1
    n = len(train)
    assert len(train.subset(np.array([0, -1]))) == 2
    with pytest.raises(DataError, match=f"row 10,000,000 is out of range: there are {n:,}"):
        train.subset(np.array([0, 10 ** 7]))
    with pytest.raises(DataError, match="a boolean mask for"):
        train.subset(np.ones(3, bool))
    with pytest.raises(DataError, match="boolean mask or integer positions"):
        train.subset(np.array([0.5]))
    assert len(train.subset(np.zeros(n, bool))) == 0
    assert len(train.subset(pd.Series(np.arange(5)).to_numpy())) == 5


def test_fixed_id_maps_must_be_sorted_and_unique():
    """[1, 1, 2] was accepted and saved a model load_model refused; [3, 1, 2] said
    'unknown user id 1', which is in the list."""
    for ids in ([1, 1, 2], [3, 1, 2]):
        with pytest.raises(DataError, match="user_ids must be sorted with no repeats"):
            Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0], user_ids=ids)
    r = Ratings.from_arrays([3, 1], [1, 2], [3.0, 4.0], user_ids=[1, 2, 3])
    assert r.users.tolist() == [2, 0] and r.n_users == 3
    with pytest.raises(DataError, match=r"titles must be a mapping \{item id: title\}, got a list"):
        Ratings.from_arrays([1, 2], [1, 2], [3.0, 4.0], titles=["a", "b"])


def test_python_int_ids_in_an_object_column_stay_integers(u1):
    """One id of 2**70 turned every id into text: the model then said user 196, which has
    training ratings, was never seen."""
    frame = u1[0].to_dataframe().head(200)
    frame["user"] = frame["user"].astype(object)
    r = mfcore.from_dataframe(frame)
    assert r.user_ids.dtype.kind == "i"
    frame.loc[frame.index[3], "user"] = 2 ** 70
    with pytest.raises(DataError, match=r"user id 1180591620717411303424 at row 3 .* too large"):
        mfcore.from_dataframe(frame)


def test_ids_of_the_wrong_kind_are_named_not_called_unseen(timesvd, u1):
    """predict(['196'], ['242']) on an integer-id model said user 196, which has training
    ratings, was never seen; recommend([196, 22]) said the lengths differed (1 vs 1)."""
    train, _ = u1
    user, item = int(train.user_ids[train.users[0]]), int(train.item_ids[train.items[0]])
    with pytest.raises(ModelError, match=r"user ids are given as text \('%d'\), but the "
                                         r"model's user ids are numbers" % user):
        timesvd.predict([str(user)], [item])
    with pytest.raises(ModelError, match="item ids are given as text"):
        timesvd.similar_items(str(item))
    with pytest.raises(ModelError, match="user must be one id, got a sequence of 2"):
        timesvd.recommend([user, user])
    assert np.isfinite(timesvd.predict([user], [item])).all()
    text = Ratings.from_arrays(["a", "b"], ["x", "y"], [3.0, 4.0], timestamps=[8e8, 9e8])
    model = mfcore.create_model("mfb", factors=2, seed=0)
    model.fit(text, epochs=1, verbose=0)
    with pytest.raises(ModelError, match="user ids are given as numbers .* are text"):
        model.predict([1], ["x"])
