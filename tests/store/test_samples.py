import pytest

from tuilab.records import Sample
from tuilab.store.comparisons import get_comparison, list_comparisons
from tuilab.store.db import transaction
from tuilab.store.generations import get_generation
from tuilab.store.pairs import preference_pairs
from tuilab.store.prompts import add_prompts, list_prompts
from tuilab.store.runs import create_run, delete_run
from tuilab.store.samples import (
    count_samples,
    get_sample,
    hacked_count,
    list_samples,
    mark_hacked,
    sample_steps,
    write_samples,
)


@pytest.fixture
def run(db):
    add_prompts(db, ["What is the capital of France?", "Name a prime number."], split="train")
    prompts = list_prompts(db)
    run_id = create_run(db, "ppo", {"batch_size": 2})
    return run_id, prompts


def rows(prompts, step, *, ref=True):
    out = []
    for i, p in enumerate(prompts):
        out.append(Sample(
            prompt=p.text, response=f"answer {step}-{i} " + "very " * (i * 5), score=0.1 * step + i,
            prompt_id=p.id, ref_response=f"ref {step}-{i}" if ref else None, spread=0.05 * i, gold=1.0 - i,
            kl=0.2 * step, length=3 + i * 5, eos=i == 0, flags=["long", "no_eos"] if i else [],
        ))
    return out


def test_write_and_list_sorted(db, run):
    run_id, prompts = run
    for step in (1, 2, 3):
        write_samples(db, run_id, step, rows(prompts, step))
    assert count_samples(db, run_id) == 6
    assert sample_steps(db, run_id) == [1, 2, 3]
    by_score = list_samples(db, run_id)
    assert [s.score for s in by_score] == sorted((s.score for s in by_score), reverse=True)
    assert list_samples(db, run_id, order_by="length", descending=False)[0].length == 3
    assert list_samples(db, run_id, order_by="flags")[0].flags == ["long", "no_eos"]
    assert [s.step for s in list_samples(db, run_id, order_by="step", descending=False)] == [1, 1, 2, 2, 3, 3]
    assert {s.step for s in list_samples(db, run_id, step=2)} == {2}
    assert len(list_samples(db, run_id, flag="no_eos")) == 3
    assert len(list_samples(db, run_id, limit=2, offset=5)) == 1
    s = list_samples(db, run_id, order_by="kl")[0]
    assert s.kl == pytest.approx(0.6) and s.eos in (True, False) and s.run_id == run_id
    with pytest.raises(ValueError, match="order_by"):
        list_samples(db, run_id, order_by="prompt; DROP TABLE samples")


def test_nulls_sort_last_and_nan_stored_as_null(db, run):
    run_id, prompts = run
    r = rows(prompts, 1)
    r[0].spread = None
    r[1].gold = float("nan")
    write_samples(db, run_id, 1, r)
    for desc in (True, False):
        assert list_samples(db, run_id, order_by="spread", descending=desc)[-1].spread is None
    assert list_samples(db, run_id, order_by="gold")[-1].gold is None


def test_rewriting_a_step_replaces_it(db, run):
    """A resumed run re-runs steps after its checkpoint: one set of samples per step."""
    run_id, prompts = run
    write_samples(db, run_id, 1, rows(prompts, 1))
    write_samples(db, run_id, 2, rows(prompts, 2))
    write_samples(db, run_id, 2, rows(prompts, 2)[:1])
    assert count_samples(db, run_id, step=2) == 1
    assert count_samples(db, run_id) == 3


def test_write_joins_an_outer_transaction(db, run):
    run_id, prompts = run
    with pytest.raises(RuntimeError), transaction(db):
        write_samples(db, run_id, 1, rows(prompts, 1))
        raise RuntimeError("flush failed")
    assert count_samples(db, run_id) == 0


def test_mark_hacked_records_reference_preferred(db, run):
    run_id, prompts = run
    write_samples(db, run_id, 4, rows(prompts, 4))
    s = list_samples(db, run_id, order_by="length")[0]
    cid = mark_hacked(db, s.id, note="pads with 'very'")
    c = get_comparison(db, cid)
    assert c.origin == "hacked" and c.run_id == run_id and c.rationale == "pads with 'very'"
    assert c.decision == "left"
    left, right = get_generation(db, c.left_id), get_generation(db, c.right_id)
    assert left.text == s.ref_response and right.text == s.response
    assert left.origin == right.origin == "ppo" and right.step == 4 and right.run_id == run_id
    assert right.adapter == "policy" and left.adapter == ""
    assert get_sample(db, s.id).hacked and hacked_count(db, run_id) == 1
    # the pair a reward model trains on: reference chosen, hacked rejected
    pair = [p for p in preference_pairs(db) if p.comparison_id == cid][0]
    assert pair.chosen == s.ref_response and pair.rejected == s.response
    # marking twice adds nothing
    assert mark_hacked(db, s.id) == cid
    assert len([v for v in list_comparisons(db) if v.id == cid]) == 1
    assert hacked_count(db, run_id) == 1


def test_mark_hacked_needs_a_reference(db, run):
    run_id, prompts = run
    write_samples(db, run_id, 2, rows(prompts, 2, ref=False))
    s = list_samples(db, run_id)[0]
    with pytest.raises(ValueError, match="no reference response"):
        mark_hacked(db, s.id)
    assert hacked_count(db, run_id) == 0


def test_unknown_prompt_id_is_kept_as_text(db, run):
    run_id, prompts = run
    r = rows(prompts, 1)
    r[0].prompt_id = 9999
    write_samples(db, run_id, 1, r)
    s = [x for x in list_samples(db, run_id) if x.prompt == prompts[0].text][0]
    assert s.prompt_id is None
    with pytest.raises(ValueError, match="prompt was deleted"):
        mark_hacked(db, s.id)


def test_samples_go_with_their_run(db, run):
    run_id, prompts = run
    write_samples(db, run_id, 1, rows(prompts, 1))
    delete_run(db, run_id)
    assert count_samples(db, run_id) == 0
