"""The first pair streams while it is generated (tiny real model): previews grow into the stored texts."""

from __future__ import annotations

import threading

from tests.tui.tuihelp import wait_for_thread
from tuilab.labeling.candidates import ModelCandidateSource, SourceSpec, source_pairs
from tuilab.labeling.queue import PairFeeder
from tuilab.labeling.repeats import RepeatPolicy
from tuilab.modeling.host import ModelHost
from tuilab.records import Prompt

PROMPTS = [Prompt(id=i, messages=[{"role": "user", "content": f"Say something about the sea {i}."}],
                  text=f"Say something about the sea {i}.") for i in (1, 2)]


def test_preview_follows_the_first_pair_in_both_modes(tiny_model_dir, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    for spec in (SourceSpec(max_new_tokens=12, seed=0),
                 SourceSpec(max_new_tokens=12, seed=0, temperature_a=0.7, temperature_b=1.2)):
        seen: list[tuple[str, str]] = []
        source = ModelCandidateSource(host, spec)
        source.preview = lambda a, b, seen=seen: seen.append((a, b))
        (a, b), _ = source_pairs(source, PROMPTS)
        assert seen, "no preview while generating"
        for pa, pb in seen:
            assert a.text.startswith(pa) and b.text.startswith(pb)
        assert seen[-1] == (a.text.rstrip("\ufffd"), b.text.rstrip("\ufffd"))
        # Without a preview nothing is collected and the texts are the same (same seed).
        quiet = ModelCandidateSource(host, spec)
        assert [(x.text, y.text) for x, y in source_pairs(quiet, PROMPTS)][0] == (a.text, b.text)


def test_feeder_publishes_the_preview_on_the_side_it_will_be_shown(tiny_model_dir, lab, tmp_path):
    host = ModelHost(tmp_path, str(tiny_model_dir))
    states = []
    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=16, seed=1))
    feeder = PairFeeder(lab.db, source, capacity=1, seed=4, on_state=states.append, repeats=RepeatPolicy(0.0))
    thread = threading.Thread(target=feeder.run, daemon=True)
    thread.start()
    wait_for_thread(lambda: feeder.ready == 1, timeout=60)
    feeder.stop()
    thread.join(10)
    pair = feeder.take()
    previews = [s for s in states if s.preview_left or s.preview_right]
    assert previews and all(s.preview_prompt.id == pair.prompt.id for s in previews)
    for s in previews:
        assert pair.left.text.startswith(s.preview_left) and pair.right.text.startswith(s.preview_right)
    # Cleared once the pair is queued.
    after = [s for s in states if s.ready == 1]
    assert after and not after[0].preview_left and after[0].preview_prompt is None
