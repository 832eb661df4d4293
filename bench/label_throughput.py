"""Labeling queue throughput: pairs per minute the generation worker delivers to a labeler who never waits.

    python bench/label_throughput.py [--mode calls|queue] [--rounds 2] [--seconds 90] [--max-new-tokens 128]

The real pair queue (`labeling.queue.PairFeeder`) and the real candidate source
(`ModelCandidateSource` on the default model) on a throwaway lab with the
shipped demo prompts. A simulated labeler takes every pair the moment it is
ready, so the queue runs dry and the worker's own speed is what is measured.
Two policies, one after the other in the same process on the same loaded model:

- `one pair per call`: the old behaviour when the queue ran dry (every call
  generated a single pair: 2 rows of up to `max_new_tokens` tokens);
- `batched`: the queue as shipped (the first pair alone, then up to `--batch`
  pairs per call: 2 × batch rows decoded together).

`--mode calls` (default) times the two kinds of model call directly, alternating
them `--rounds` times so a shared machine's load falls on both alike: one pair
(2 rows) against `--batch` pairs (2 × batch rows), and the time from the
batched call's start to its first streamed text. `--mode queue` runs the whole
queue for `--seconds` per policy instead.

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


def time_calls(host: ModelHost, prompts: list, *, batch: int, rounds: int, max_new_tokens: int, seed: int) -> dict:
    """Alternate one-pair and `batch`-pair calls; seconds per call of each kind and the first streamed text."""
    one, many, first_text = [], [], []
    for r in range(rounds):
        for kind in ("one", "many"):
            source = ModelCandidateSource(host, SourceSpec(max_new_tokens=max_new_tokens, seed=seed + r))
            seen: list[float] = []
            source.preview = lambda a, b, seen=seen: seen.append(time.monotonic()) if (a or b) else None
            chunk = prompts[:1] if kind == "one" else prompts[:batch]
            t0 = time.monotonic()
            source.pairs(chunk)
            elapsed = time.monotonic() - t0
            (one if kind == "one" else many).append(elapsed)
            if kind == "many" and seen:
                first_text.append(seen[0] - t0)
            print(f"  round {r + 1}: {len(chunk)} pair(s) in {elapsed:.1f} s", flush=True)
    return {"one_s": sum(one) / len(one), "many_s": sum(many) / len(many),
            "first_text_s": min(first_text) if first_text else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90.0, help="labeling time per policy")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4, help="pairs per call for the batched policy")
    ap.add_argument("--queue", type=int, default=4, help="queue size (the label screen's default is 4)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=("calls", "queue"), default="calls")
    ap.add_argument("--rounds", type=int, default=2, help="alternations in --mode calls")
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
              f"{args.max_new_tokens} new tokens per answer")
        if args.mode == "calls":
            from tuilab.store.prompts import sample_prompts

            db = open_db(paths.db)
            prompts = sample_prompts(db, args.batch, seed=args.seed)
            db.conn.close()
            r = time_calls(host, prompts, batch=args.batch, rounds=args.rounds,
                           max_new_tokens=args.max_new_tokens, seed=args.seed)
            old, new = 60 / r["one_s"], 60 * args.batch / r["many_s"]
            print(f"one pair per call: {r['one_s']:.1f} s per call = {old:.1f} pairs/min")
            print(f"{args.batch} pairs per call: {r['many_s']:.1f} s per call = {new:.1f} pairs/min "
                  f"({new / old:.2f}x); first streamed text after {r['first_text_s'] or float('nan'):.1f} s")
            load_after = os.getloadavg()
            print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} ({os.cpu_count()} cores)")
            return 0
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
