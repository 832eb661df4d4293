"""bench/gpu_check.py: says "no GPU" and exits 0 without CUDA; its code path runs (CPU dry run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_no_gpu_and_exits_0(capsys):
    assert load().main([]) == 0
    assert capsys.readouterr().out.startswith("no GPU")


@pytest.mark.slow
def test_cpu_dry_run_measures_sampler_fidelity_and_step_one_kl(capsys):
    before = torch.get_num_threads()
    try:
        assert load().main(["--cpu-dry-run", "--modes", "bf16", "--rm-steps", "2", "--ppo-steps", "1",
                            "--new-tokens", "6"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("sampler vs fresh"))
    assert float(line.split("max |Δlogp| ")[1].split()[0]) < 1e-4  # fp32: the sampler's states are the forward's
    assert "KL at step 1" in out and "RM   2 steps" in out
