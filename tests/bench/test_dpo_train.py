"""bench/dpo_train.py runs end to end on a tiny model (tuilab's configurations; TRL is a bench-only peer)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "dpo_train.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_packed_and_plain_configurations_train_the_same_thing(tiny_model_dir):
    out = run("--model", str(tiny_model_dir), "--pairs", "8", "--threads", "1", "--configs", "tuilab,tuilab-plain",
              "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == {"tuilab", "tuilab-plain"}
    for res in results.values():
        assert res["pairs_per_s"] > 0 and res["peak_rss_gib"] > 0
        # The span is the whole job: setup (tokenising, the check, the reference pass) + the steps.
        assert res["setup_s"] > 0 and res["steps_s"] > 0
        assert res["setup_s"] + res["steps_s"] == pytest.approx(res["seconds"], rel=1e-6)
    # Prompt sharing changes the cost, never the result: same data, same seed, fp32.
    assert results["tuilab"]["loss"] == pytest.approx(results["tuilab-plain"]["loss"], abs=1e-4)
    assert "tuilab-plain" in out.stdout and "pairs/s" in out.stdout


@pytest.mark.skipif(importlib.util.find_spec("trl") is not None, reason="TRL is importable here")
def test_without_trl_the_peer_configurations_say_how_to_install_it(tiny_model_dir):
    out = run("--model", str(tiny_model_dir), "--pairs", "8", "--configs", "trl-fast")
    assert out.returncode != 0
    assert "TRL is not importable" in out.stderr
