"""One job on several processes: the few collective operations the loops need, through accelerate.

A launcher (`torchrun --nproc_per_node N -m tuilab …`, `accelerate launch
--num_processes N -m tuilab …`) starts the same `tuilab` command N times with
`WORLD_SIZE = N`. `current()` then builds one `accelerate.Accelerator` (gloo
on CPUs, NCCL on GPUs, DDP or whatever accelerate's own config asks for) and
every loop splits its global batch across the processes:

- the trainable part is wrapped by `Dist.prepare` (DDP: gradients averaged
  over the ranks in the backward pass), and each rank's loss is weighted by
  its share of the *global* batch times the number of ranks, so the averaged
  gradient is the one a single process would compute on the whole batch;
- batch statistics (advantage whitening, explained variance, losses and
  accuracies for the metrics) are summed over the ranks with `Dist.sum`;
- per-row results (samples, rewards, lengths) are gathered with
  `Dist.gather_objects` / `Dist.gather_rows`, so the main process emits
  every rank's rows once;
- only the main process (rank 0) writes the database and the run folder;
  a rank that fails writes its error on the run row and exits, the launcher
  stops the others, and the main process, on its broken collective, keeps
  that rank's error as the run's (`jobs/runner.py`, `collective_failure`).

With one process (no launcher, the App's worker thread, every test but the
two-process one) `current()` is `SINGLE`: no Accelerator, every operation is
the identity and `prepare` returns the module itself, so the single-process
path runs exactly the code it ran before, with no copy and no wrapper.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Raised by torch.distributed when a peer is gone or a collective timed out (gloo, NCCL, the c10d store).
_COLLECTIVE_ERRORS = ("DistError", "DistBackendError", "DistNetworkError", "DistStoreError")
_COLLECTIVE_TEXT = ("Connection closed by peer", "Connection reset by peer", "/gloo/", "NCCL", "Timed out")


def collective_failure(exc: BaseException) -> bool:
    """Did a collective fail (another rank ended or stopped answering), rather than this rank's own code?

    When one rank fails and exits, the others see it only as their next
    collective breaking (gloo: "Connection closed by peer"); the run's record
    names the rank that failed first, and this tells the two apart. Torch-free.
    """
    if any(cls.__name__ in _COLLECTIVE_ERRORS for cls in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc) for t in _COLLECTIVE_TEXT)


def launched_processes() -> int:
    """How many processes the launcher started for this job (1 without a launcher); torch-free."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank `rank` of `size`, and the Accelerator when `size` > 1."""

    rank: int = 0
    size: int = 1
    accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def device(self):
        return self.accelerator.device if self.accelerator is not None else None

    # ------------------------------------------------------------ models
    def prepare(self, module):
        """The module to call for a trainable forward: DDP-wrapped (through accelerate) across ranks, else itself.

        Device placement stays the loader's (each rank's model is already on its device).
        """
        if not self.enabled:
            return module
        return self.accelerator.prepare_model(module, device_placement=False)

    def no_sync(self, module):
        """Skip the gradient all-reduce for this backward (all but the last micro-batch of a step)."""
        if not self.enabled or not hasattr(module, "no_sync"):
            return contextlib.nullcontext()
        return module.no_sync()

    def clip_grad_norm_(self, params, max_norm: float):
        import torch

        if not self.enabled:
            return torch.nn.utils.clip_grad_norm_(params, max_norm)
        return self.accelerator.clip_grad_norm_(params, max_norm)

    # ------------------------------------------------------------ collectives
    def sum(self, tensor):
        """Elementwise sum over the ranks (the tensor itself with one process)."""
        return self._all_reduce(tensor, "SUM")

    def max(self, tensor):
        return self._all_reduce(tensor, "MAX")

    def _all_reduce(self, tensor, op: str):
        if not self.enabled:
            return tensor
        import torch.distributed as td

        out = tensor.clone()
        td.all_reduce(out, op=getattr(td.ReduceOp, op))
        return out

    def gather_rows(self, tensor):
        """Rank 0's rows, then rank 1's, …, along dim 0 (every rank has the same number of rows)."""
        if not self.enabled:
            return tensor
        return self.accelerator.gather(tensor.contiguous())

    def gather_objects(self, items: Sequence[Any]) -> list[Any]:
        """Every rank's list, concatenated in rank order, on every rank."""
        if not self.enabled:
            return list(items)
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank."""
        if not self.enabled:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a cancel seen by one stops them all at the same step)."""
        if not self.enabled:
            return bool(flag)
        import torch

        return bool(self.sum(torch.tensor([1.0 if flag else 0.0], device=self.device)).item() > 0)

    def check(self, control) -> None:
        """`control.check()` agreed by every rank: a pause on the main process holds the others at the
        next collective; a cancel on any rank raises `CancelledRun` on all of them at the same step."""
        if not self.enabled:
            control.check()
            return
        from tuilab.training.events import CancelledRun

        try:
            control.check()
            cancelled = False
        except CancelledRun:
            cancelled = True
        if self.any(cancelled):
            raise CancelledRun()

    def barrier(self) -> None:
        if self.enabled:
            self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------ data
    def split(self, items: Sequence[Any]) -> tuple[list[Any], float]:
        """This rank's contiguous slice of a batch of any length (sizes differ by at most one), and its weight.

        A rank left with nothing (a batch smaller than the number of ranks) gets
        the first item with weight 0: DDP needs every rank in every backward pass.
        """
        n = len(items)
        lo, hi = self.rank * n // self.size, (self.rank + 1) * n // self.size
        return (list(items[lo:hi]), 1.0) if hi > lo else (list(items[:1]), 0.0)

    def span(self, n: int) -> range:
        """This rank's contiguous share of `n` items (possibly empty), for work that is gathered afterwards."""
        return range(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's contiguous slice of a global batch whose length is a multiple of `size`."""
        if not self.enabled:
            return list(items)
        n = len(items) // self.size
        return list(items[self.rank * n : (self.rank + 1) * n])


SINGLE = Dist()
_current: Dist | None = None


def current() -> Dist:
    """This process's `Dist`: `SINGLE` without a launcher, else the one Accelerator for the whole process."""
    global _current
    if _current is not None:
        return _current
    if launched_processes() <= 1:
        return SINGLE
    import torch
    from accelerate import Accelerator

    # Without a GPU accelerate only goes multi-process when told it runs on CPUs (then gloo).
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    _current = Dist(rank=accelerator.process_index, size=accelerator.num_processes, accelerator=accelerator)
    return _current
