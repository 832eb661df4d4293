"""Checkpoints PPO and DPO share: written whole or not at all, the newest found again, each rank's streams."""

from __future__ import annotations

import pytest
import torch

from tuilab.training.checkpoints import (
    STATE_FILE,
    Schedule,
    find_latest_checkpoint,
    rank_seed,
    restore_rank_rng,
    rng_of_ranks,
    written_whole,
)
from tuilab.training.distributed import SINGLE, Dist


def test_a_checkpoint_replaces_the_old_folder_in_one_piece(tmp_path):
    folder = tmp_path / "checkpoints" / "step-000004"
    folder.mkdir(parents=True)
    (folder / "old.txt").write_text("old")
    with written_whole(folder) as tmp:
        assert tmp == folder.with_name("step-000004.tmp") and tmp.is_dir()
        (tmp / STATE_FILE).write_text("new")
        assert (folder / "old.txt").exists()  # the old one stays whole until the rename
    assert sorted(p.name for p in folder.iterdir()) == [STATE_FILE]
    assert not folder.with_name("step-000004.tmp").exists()


def test_a_write_that_fails_leaves_the_previous_checkpoint_and_no_half_one_is_found(tmp_path):
    out = tmp_path / "run"
    first = out / "checkpoints" / "step-000002"
    with written_whole(first) as tmp:
        (tmp / STATE_FILE).write_text("2")
    second = out / "checkpoints" / "step-000004"
    with pytest.raises(OSError), written_whole(second) as tmp:
        (tmp / STATE_FILE).write_text("half")
        raise OSError("disk full")
    assert not second.exists() and (second.with_name("step-000004.tmp") / STATE_FILE).exists()
    assert find_latest_checkpoint(out) == first
    with written_whole(second) as tmp:  # the next attempt starts from a clean temporary folder
        assert list(tmp.iterdir()) == []
        (tmp / STATE_FILE).write_text("4")
    assert find_latest_checkpoint(out) == second and (second / STATE_FILE).read_text() == "4"


def test_the_latest_checkpoint_is_the_highest_complete_step(tmp_path):
    assert find_latest_checkpoint(tmp_path) is None  # no checkpoints folder
    root = tmp_path / "checkpoints"
    root.mkdir()
    assert find_latest_checkpoint(tmp_path) is None
    for name in ("step-000009", "step-000010", "step-000012.tmp"):
        (root / name).mkdir()
        (root / name / STATE_FILE).write_text("x")
    (root / "step-000011").mkdir()  # an adapter without its trainer state: not a checkpoint to resume
    (root / "step-000013").write_text("a file")
    assert find_latest_checkpoint(str(tmp_path)) == root / "step-000010"


def test_rank_0_samples_from_the_seed_and_every_other_rank_from_its_own():
    assert rank_seed(5, 0) == 5
    seeds = [rank_seed(5, r) for r in range(8)]
    assert len(set(seeds)) == 8 and seeds == [rank_seed(5, r) for r in range(8)]
    assert rank_seed(6, 1) != rank_seed(5, 1)


def test_one_process_keeps_no_per_rank_streams():
    gens = {"sample": torch.Generator().manual_seed(1)}
    assert rng_of_ranks(SINGLE, {"sample": gens["sample"].get_state()}) == {}
    before = gens["sample"].get_state()
    calls = []
    restore_rank_rng(gens, {"step": 3, "config": {"seed": 0}, "rng_ranks": [{}, {}]}, SINGLE, calls.append)
    assert calls == [] and torch.equal(gens["sample"].get_state(), before)


def _draws(gens) -> list[list[float]]:
    return [torch.rand(3, generator=g).tolist() for g in gens.values()]


def test_a_rank_resumes_its_own_streams_from_a_checkpoint_of_as_many_ranks():
    gens = {"sample": torch.Generator(), "shuffle": torch.Generator()}
    saved = [{"rank": 0}, {"rank": 1}]
    got = []
    restore_rank_rng(gens, {"step": 4, "config": {"seed": 2}, "rng_ranks": saved}, Dist(rank=1, size=2), got.append)
    assert got == [{"rank": 1}]


def test_after_a_change_of_world_size_other_ranks_get_fresh_streams_never_rank_0s():
    state = {"step": 4, "config": {"seed": 2}, "rng_ranks": [{}, {}, {}]}  # saved by three ranks
    got = []
    rank1 = {"sample": torch.Generator().manual_seed(2), "shuffle": torch.Generator().manual_seed(2)}
    restore_rank_rng(rank1, state, Dist(rank=1, size=2), got.append)
    assert got == []
    seed = rank_seed(2, 1) + 104729 * 4  # by rank and step: a resume from another step draws otherwise
    want = {"sample": torch.Generator().manual_seed(seed), "shuffle": torch.Generator().manual_seed(seed + 1)}
    assert _draws(rank1) == _draws(want)
    rank0 = {"sample": torch.Generator().manual_seed(7)}
    restore_rank_rng(rank0, state, Dist(rank=0, size=2), got.append)  # keeps the states restored before
    assert got == [] and _draws(rank0) == _draws({"sample": torch.Generator().manual_seed(7)})


def test_checkpoints_every_n_steps_and_at_the_last():
    written = []
    s = Schedule(every=3, total=7, write=written.append)
    for step in range(1, 8):
        s.after(step)
    assert written == [3, 6, 7] and s.last == 7
    never = Schedule(every=0, total=7, write=written.append)
    for step in range(1, 8):
        never.after(step)
    assert written == [3, 6, 7] and never.last == 0


def test_a_cancel_checkpoints_the_last_finished_step_unless_it_is_already_written():
    written = []
    s = Schedule(every=3, total=10, write=written.append)
    for step in range(1, 6):
        s.after(step)
    s.cancelled(6)  # step 6 was cut short: 5 is the last finished one
    assert written == [3, 5]
    s = Schedule(every=3, total=10, write=written.append)
    for step in range(1, 4):
        s.after(step)
    s.cancelled(4)  # 3 is finished and already on disk
    assert written == [3, 5, 3]
    resumed = Schedule(every=3, total=10, write=written.append, last=5)  # a resume from step 5
    resumed.cancelled(6)
    assert written == [3, 5, 3]
