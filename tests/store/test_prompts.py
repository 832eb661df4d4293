"""Prompts: dedup by hash, splits, listing, searching, sampling, transactions."""

from __future__ import annotations

import pytest

from tuilab.store.prompts import (
    NotFound,
    add_prompt_rows,
    add_prompts,
    count_prompts,
    find_prompt,
    get_prompt,
    hash_split,
    list_prompts,
    prompt_hash,
    sample_prompts,
    transaction,
)

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "What is 2+2?"},
]


def test_add_text_and_messages(db):
    result = add_prompts(db, ["Why is the sky blue?", CHAT], source="test", split="train")
    assert result.duplicates == [] and result.total == 2 and result.ids == result.added
    text_prompt = get_prompt(db, result.added[0])
    assert text_prompt.messages == [{"role": "user", "content": "Why is the sky blue?"}]
    assert (text_prompt.text, text_prompt.split, text_prompt.source) == ("Why is the sky blue?", "train", "test")
    chat = get_prompt(db, result.added[1])
    assert chat.messages == CHAT and chat.text == "What is 2+2?"  # display: the last user turn


def test_duplicates_are_reported_not_doubled(db):
    first = add_prompts(db, ["a", "b"])
    second = add_prompts(db, ["b", "c", "c", "a"])
    assert second.duplicates == [0, 2, 3]
    assert len(second.added) == 1 and second.total == 3
    assert second.ids == [first.ids[1], second.added[0], second.added[0], first.ids[0]]
    assert count_prompts(db) == 3


def test_the_hash_sees_roles_and_turns():
    assert prompt_hash([{"role": "user", "content": "x"}]) != prompt_hash([{"role": "system", "content": "x"}])
    # Key order in the input does not matter.
    assert prompt_hash([{"content": "x", "role": "user"}]) == prompt_hash([{"role": "user", "content": "x"}])


def test_split_from_the_hash_is_deterministic_and_about_ten_percent(db):
    result = add_prompts(db, [f"prompt number {i}" for i in range(1000)])
    test = count_prompts(db, "test")
    assert 60 <= test <= 140
    for pid in result.added[:20]:
        p = get_prompt(db, pid)
        assert p.split == hash_split(prompt_hash(p.messages))


def test_per_item_splits(db):
    result = add_prompt_rows(db, [("a", "test"), ("b", "train"), ("c", None)], source="demo")
    assert [get_prompt(db, i).split for i in result.added[:2]] == ["test", "train"]


@pytest.mark.parametrize(
    "item,message",
    [
        ("   ", "prompt is empty"),
        ([], "empty list"),
        ([{"role": "user"}], "has no 'content'"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "must end with a user"),
        ([{"role": "wizard", "content": "q"}], "role 'wizard'"),
    ],
)
def test_bad_items_raise_before_anything_is_written(db, item, message):
    with pytest.raises(ValueError, match=message) as err:
        add_prompts(db, ["fine", item])
    assert "prompt 1" in str(err.value)
    assert count_prompts(db) == 0


def test_bad_split(db):
    with pytest.raises(ValueError, match="split"):
        add_prompts(db, ["x"], split="dev")


def test_get_missing(db):
    with pytest.raises(NotFound, match="no prompt with id 42"):
        get_prompt(db, 42)


def test_find_prompt(db):
    pid = add_prompts(db, [CHAT]).added[0]
    assert find_prompt(db, CHAT) == pid
    assert find_prompt(db, CHAT[:2]) is None


def test_list_filters_and_pages(db):
    add_prompts(db, [f"train {i}" for i in range(5)], split="train")
    add_prompts(db, ["test 100% sure", "test other"], split="test")
    assert [p.text for p in list_prompts(db, split="test")] == ["test 100% sure", "test other"]
    assert [p.text for p in list_prompts(db, limit=2, offset=1)] == ["train 1", "train 2"]
    assert [p.text for p in list_prompts(db, search="TRAIN 3")] == ["train 3"]
    # % and _ are literal in searches.
    assert [p.text for p in list_prompts(db, search="100%")] == ["test 100% sure"]
    assert list_prompts(db, search="_") == []
    assert count_prompts(db) == 7 and count_prompts(db, "train") == 5
    assert count_prompts(db, search="test") == 2


def test_sample_is_reproducible_and_bounded(db):
    add_prompts(db, [f"p{i}" for i in range(30)], split="train")
    add_prompts(db, ["held out"], split="test")
    a = sample_prompts(db, 5, seed=1)
    assert [p.id for p in a] == [p.id for p in sample_prompts(db, 5, seed=1)]
    assert len({p.id for p in a}) == 5 and all(p.split == "train" for p in a)
    assert len(sample_prompts(db, 100, seed=0)) == 30
    assert [p.text for p in sample_prompts(db, 5, split="test")] == ["held out"]
    assert len(sample_prompts(db, 100, split=None)) == 31
    assert sample_prompts(db, 0) == []


def test_sample_excludes_labeled(db):
    from tuilab.records import Comparison
    from tuilab.store.comparisons import record_comparison
    from tuilab.store.generations import add_generation

    ids = add_prompts(db, ["a", "b", "c"], split="train").added
    left, right = add_generation(db, ids[0], "x"), add_generation(db, ids[0], "y")
    record_comparison(db, Comparison(ids[0], left, right, "left"))
    remaining = {p.id for p in sample_prompts(db, 10, exclude_labeled=True)}
    assert remaining == {ids[1], ids[2]}


def test_transaction_rolls_back_and_nests(db):
    with pytest.raises(RuntimeError), transaction(db):
        add_prompts(db, ["kept?"])  # joins the outer transaction
        raise RuntimeError("no")
    assert count_prompts(db) == 0 and not db.conn.in_transaction
    with transaction(db):
        add_prompts(db, ["kept"])
    assert count_prompts(db) == 1


def test_list_and_count_filter_by_source(db):
    from tuilab.store.prompts import add_prompts, count_prompts, list_prompts

    add_prompts(db, ["demo one", "demo two"], source="demo", split="train")
    add_prompts(db, ["fact one"], source="import:prompts.jsonl", split="train")
    assert count_prompts(db, split="train", source="prompts.jsonl") == 1
    assert count_prompts(db, split="train", source="import:prompts.jsonl") == 1
    assert [p.text for p in list_prompts(db, source="demo")] == ["demo one", "demo two"]
    assert count_prompts(db, split="train") == 3
