"""`tuilab …` with one rank made to fail at a chosen update: `python -m tuilab ARGS…` otherwise.

Run under `torchrun … tests/training/rank_failure_harness.py ARGS…` with
`TUILAB_FAIL_RANK=r TUILAB_FAIL_AT=u TUILAB_FAIL_HOW=raise|kill`: on rank r,
the u-th agreed per-update check (`Dist.check`, one per update in every loop)
raises `RuntimeError("injected failure …")`, or kills the process with SIGKILL
(a crash no Python code sees: out of memory, a segfault). Everything else is
the real command: CLI, job runner, database, DDP over gloo.
"""

from __future__ import annotations

import os
import signal
import sys

from tuilab.training.distributed import Dist

_original_check = Dist.check
_calls = {"n": 0}


def _check(self, control) -> None:
    _calls["n"] += 1
    if self.rank == int(os.environ["TUILAB_FAIL_RANK"]) and _calls["n"] == int(os.environ["TUILAB_FAIL_AT"]):
        if os.environ.get("TUILAB_FAIL_HOW") == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"injected failure at update {_calls['n']}")
    _original_check(self, control)


Dist.check = _check

if __name__ == "__main__":
    if os.environ.get("RANK", "0") not in ("", "0"):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - as tuilab/__main__.py does
    from tuilab.cli import main

    sys.exit(main())
