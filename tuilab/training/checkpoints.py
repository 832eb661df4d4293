"""What PPO's and DPO's checkpoints share: written whole or not at all, found again, each rank's streams.

A checkpoint is a folder `checkpoints/step-NNNNNN` holding the policy adapter
and `STATE_FILE` (optimiser, schedule, RNG, monitor). It is written to a
`.tmp` sibling and renamed, so a kill mid-write leaves the previous one intact
and never a half one. Under several processes each rank samples from its own
streams; a checkpoint keeps every rank's (`rng_ranks`) so that a resume on as
many ranks draws what the run would have drawn.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuilab.training.distributed import Dist

STATE_FILE = "trainer_state.pt"


@contextmanager
def written_whole(folder: Path) -> Iterator[Path]:
    """Yield a temporary folder to write into; on success it replaces `folder` in one rename."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def find_latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder under `output_dir/checkpoints` (by step)."""
    root = Path(output_dir) / "checkpoints"
    found = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
                   and (p / STATE_FILE).exists()) if root.is_dir() else []
    return found[-1] if found else None


def rank_seed(seed: int, rank: int) -> int:
    """Rank 0 (and a single process) samples from `seed`'s streams; every other rank from its own."""
    return seed if rank == 0 else seed + 7919 * rank


def rng_of_ranks(d: Dist, states: dict) -> dict[str, Any]:
    """The checkpoint entries for every rank's RNG states (a collective: every rank calls it); none for one."""
    if not d.enabled:
        return {}
    return {"world_size": d.size, "rng_ranks": d.gather_objects([states])}


def restore_rank_rng(gens: dict[str, Any], state: dict, d: Dist, set_states: Callable[[dict], None]) -> None:
    """After the rank-0 states were restored: this rank's own, from a checkpoint of as many ranks; otherwise
    fresh streams for ranks > 0 (seeded by rank and step), never a copy of rank 0's."""
    if not d.enabled:
        return
    ranks = state.get("rng_ranks") or []
    if len(ranks) == d.size:
        set_states(ranks[d.rank])
    elif d.rank > 0:
        seed = rank_seed(int(state["config"].get("seed", 0)), d.rank) + 104729 * int(state["step"])
        for offset, g in enumerate(gens.values()):
            g.manual_seed(seed + offset)


@dataclass
class Schedule:
    """When a loop checkpoints: every `every` steps and at the last one; on a cancel, the last finished step
    (so `--resume` loses nothing). `write(step)` writes one; `last` is the newest written."""

    every: int
    total: int
    write: Callable[[int], None]
    last: int = 0

    def after(self, step: int) -> None:
        if self.every > 0 and (step % self.every == 0 or step == self.total):
            self.write(step)
            self.last = step

    def cancelled(self, step: int) -> None:
        """`step` was cancelled before it finished."""
        if step - 1 > self.last:
            self.write(step - 1)
