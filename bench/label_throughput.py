"""Labeling queue throughput: pairs per minute the generation worker delivers to a labeler who never waits.

    python bench/label_throughput.py [--seconds 90] [--max-new-tokens 128] [--model NAME]

The real pair queue (`labeling.queue.PairFeeder`) and the real candidate source
(`ModelCandidateSource` on the default model) on a throwaway lab with the
shipped demo prompts. A simulated labeler takes every pair the moment it is
ready, so the queue runs dry and the worker's own speed is what is measured.
Two policies, one after the other in the same process on the same loaded model:

- `one pair per call`: the old behaviour when the queue ran dry (every call
  generated a single pair: 2 rows of up to `max_new_tokens` tokens);
- `batched`: the queue as shipped (the first pair alone, then up to `--batch`
  pairs per call: 2 × batch rows decoded together).

Printed: pairs per minute for each, their ratio, the time to the first whole
pair and to its first streamed text (the model already loaded), the load average before and after (the machine is shared: say so when quoting).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuilab.config import DEFAULT_MODEL, LabPaths  # noqa: E402
from tuilab.labeling.candidates import ModelCandidateSource, SourceSpec  # noqa: E402
from tuilab.labeling.queue import PairFeeder  # noqa: E402
from tuilab.labeling.repeats import RepeatPolicy  # noqa: E402
from tuilab.modeling.host import ModelHost  # noqa: E402
from tuilab.store.db import open_db  # noqa: E402
from tuilab.store.demo import ensure_demo_prompts  # noqa: E402


def run_policy(db_path: Path, host: ModelHost, *, batch: int, capacity: int, seconds: float,
               max_new_tokens: int, seed: int) -> dict:
    source = ModelCandidateSource(host, SourceSpec(max_new_tokens=max_new_tokens, seed=seed))
    seen: dict[str, float] = {}

    def on_state(state) -> None:  # the worker's updates, as the label screen receives them
        if (state.preview_left or state.preview_right) and "text" not in seen:
            seen["text"] = time.monotonic()

    feeder = PairFeeder(db_path, source, capacity=capacity, max_batch=batch, seed=seed,
                        repeats=RepeatPolicy(share=0.0), nice=0, on_state=on_state)
    thread = threading.Thread(target=feeder.run, daemon=True)
    start = time.monotonic()
    thread.start()
    taken, first, tokens = 0, None, 0
    while time.monotonic() - start < seconds:
        pair = feeder.take()
        if pair is None:
            if feeder.state.phase == "failed":
                raise RuntimeError(feeder.state.error)
            time.sleep(0.05)
            continue
        taken += 1
        tokens += (pair.left.n_tokens or 0) + (pair.right.n_tokens or 0)
        if first is None:
            first = time.monotonic() - start
    elapsed = time.monotonic() - start
    feeder.stop()
    thread.join(60)
    return {"pairs": taken, "seconds": elapsed, "per_min": 60 * taken / elapsed, "first_s": first,
            "tokens_per_s": tokens / elapsed, "first_text_s": seen["text"] - start if "text" in seen else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90.0, help="labeling time per policy")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4, help="pairs per call for the batched policy")
    ap.add_argument("--queue", type=int, default=4, help="queue size (the label screen's default is 4)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tuilab-throughput-") as tmp:
        paths = LabPaths(Path(tmp))
        db = open_db(paths.db)
        ensure_demo_prompts(db)
        db.conn.close()
        host = ModelHost(ROOT / "models", args.model)
        t0 = time.monotonic()
        with host.lock:
            host.loaded()
        load_s = time.monotonic() - t0
        print(f"model {host.name} loaded in {load_s:.1f} s; {host.threads} torch thread(s) for generation; "
              f"{args.max_new_tokens} new tokens per answer; {args.seconds:.0f} s per policy")
        results = {}
        for name, batch in (("one pair per call", 1), ("batched", args.batch)):
            results[name] = r = run_policy(paths.db, host, batch=batch, capacity=args.queue, seconds=args.seconds,
                                           max_new_tokens=args.max_new_tokens, seed=args.seed)
            print(f"{name:<18} {r['pairs']:>3} pairs in {r['seconds']:.0f} s = {r['per_min']:.1f} pairs/min "
                  f"({r['tokens_per_s']:.1f} answer tok/s); first pair after {r['first_s'] or float('nan'):.1f} s, "
                  f"first streamed text after {r['first_text_s'] or float('nan'):.1f} s")
    old, new = results["one pair per call"]["per_min"], results["batched"]["per_min"]
    ratio = new / old if old else float("inf")
    load_after = os.getloadavg()
    print(f"batched / one pair per call: {ratio:.2f}x pairs per minute")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"({os.cpu_count()} cores; a shared machine slows both policies alike)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
