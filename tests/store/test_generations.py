"""Generations: every field stored and read back."""

from __future__ import annotations

import sqlite3

import pytest

from tuilab.store.generations import (
    add_generation,
    find_generation,
    get_generation,
    list_generations,
)
from tuilab.store.prompts import NotFound, add_prompts


@pytest.fixture
def pid(db):
    return add_prompts(db, ["Why?"]).added[0]


def test_round_trip_every_field(db, pid):
    gid = add_generation(
        db, pid, "Because.", model="smollm2", adapter="policy", origin="ppo", step=7,
        params={"temperature": 0.9, "top_p": 1.0}, n_tokens=3, finished=False,
    )  # fmt: skip
    g = get_generation(db, gid)
    assert (g.id, g.prompt_id, g.text, g.model, g.adapter, g.origin) == (gid, pid, "Because.", "smollm2", "policy", "ppo")
    assert (g.step, g.params, g.n_tokens, g.finished, g.run_id) == (7, {"temperature": 0.9, "top_p": 1.0}, 3, False, None)


def test_defaults(db, pid):
    g = get_generation(db, add_generation(db, pid, "x"))
    assert (g.model, g.adapter, g.origin, g.params, g.n_tokens, g.finished, g.step) == ("", "", "model", {}, None, None, None)
    assert get_generation(db, add_generation(db, pid, "y", finished=True)).finished is True


def test_unknown_prompt_is_refused(db):
    with pytest.raises(sqlite3.IntegrityError):
        add_generation(db, 999, "orphan")


def test_text_must_be_a_string(db, pid):
    with pytest.raises(TypeError):
        add_generation(db, pid, None)


def test_missing(db):
    with pytest.raises(NotFound):
        get_generation(db, 1)


def test_list_and_find(db, pid):
    a = add_generation(db, pid, "a", origin="import")
    b = add_generation(db, pid, "b", model="m", n_tokens=1)
    assert [g.id for g in list_generations(db, pid)] == [a, b]
    assert [g.id for g in list_generations(db, pid, origin="import")] == [a]
    assert find_generation(db, pid, "a", origin="import") == a
    assert find_generation(db, pid, "a", origin="model") is None
    assert find_generation(db, pid, "b", origin="model", model="m", n_tokens=1) == b
    assert find_generation(db, pid, "b", origin="model", model="m", n_tokens=2) is None
