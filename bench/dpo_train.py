"""DPO training throughput and memory: tuilab against TRL's DPOTrainer, same model, same data, one run.

    tuilab models setup                 # once: imports models/smollm2-135m-instruct
    pip install --target /tmp/dpo-peer --no-deps trl==1.12.0 datasets==5.0.1 pyarrow==25.0.1 dill==0.3.8 \
        multiprocess==0.70.16 pandas xxhash httpx httpcore sniffio
    PYTHONPATH=/tmp/dpo-peer python bench/dpo_train.py [--pairs 96] [--epochs 1] [--threads 2]

(TRL is a bench-only peer in its own folder; the lab never imports it.)

Every configuration runs in its own subprocess (so one's memory cannot help
another) through a small middle process that reads the worker's peak RSS with
`getrusage(RUSAGE_CHILDREN)`. All use SmolLM2-135M-Instruct in fp32, LoRA r=8
(α 16) on all linear layers, batch 8, β 0.1, sigmoid loss, the same synthetic
conversational pairs, no evaluation. The reference is the model with its
adapter off in both. The timed span is the same work on both sides, from a
loaded model and raw pairs to a trained adapter: for tuilab the `train_dpo`
call (tokenising, the packed/plain check, the reference pass, every step); for
TRL the `DPOTrainer` constructor (tokenising, the adapter and — in the fastest
configuration, `precompute_ref_log_probs` — the whole reference pass) plus
`trainer.train()`. pairs/s = pairs × epochs ÷ that span. The steps alone are
printed too (tuilab: the optimiser steps; TRL: `train()`, which for its default
configuration also runs the reference forward in every step).

Configurations: tuilab (defaults); TRL default (`DPOConfig` as shipped:
gradient checkpointing on); TRL fastest on a CPU (gradient checkpointing off,
reference log-probs precomputed once). `--configs tuilab-plain` adds tuilab
with prompt sharing off (chosen and rejected as separate rows, as TRL runs
them), to show what the sharing earns.

Measured here (2026-12-01, 32 pairs, `--threads 1 --repeats 2`, `nice -n 10`, on
a 2-core machine shared with three other engineers whose jobs ran at normal
priority; the load average is beside each run). Wall time then follows the CPU
share each run got (one TRL-default run took 877 s, the next 112 s, for the same
76 CPU-s), so the ratio to read is pairs per CPU-second, which with one thread
is pairs/s on an idle machine; each configuration repeated it within 5%.
- bench run A (load average 5.2 at the start, 7.6 after round 1, 3.9 at the end): tuilab 1.050 pairs per CPU-s (0.424
  pairs/s), 2.35 GiB; TRL 1.12 fastest (no gradient checkpointing, reference
  log-probs precomputed) 0.503 (0.135), 4.16 GiB; TRL default 0.419 (0.036;
  0.418 and 0.285 pairs/s in its second run), 2.97 GiB.
  tuilab / TRL fastest: 2.09x per CPU-s, 0.57x peak RSS; tuilab / TRL default:
  2.51x per CPU-s, 0.81x peak RSS. Steps alone (reference pass excluded on
  both sides, round 1, load 5.2–6.7): tuilab 46.3 s, TRL fastest 105.6 s (2.28x, wall).
- bench run B (load 7.8 at the start, 6.2 before TRL default, 11.4 at its end;
  round 2 stopped unfinished): tuilab
  1.023 per CPU-s (0.064 pairs/s), 2.35 GiB; TRL fastest 0.500 (0.090), 4.53
  GiB; TRL default 0.400 (0.022), 2.84 GiB. tuilab / TRL fastest: 2.05x per
  CPU-s, 0.52x peak RSS; tuilab / TRL default: 2.56x per CPU-s, 0.83x peak RSS.
So both speed goals (>= 1.5x TRL default, >= 1.2x TRL fastest) and the memory
goal (no higher) are met, per CPU-second; in wall time the runs' CPU shares
differed too much on this machine for a pairs/s ratio to mean anything.
The arithmetic agrees: per epoch of these 32 pairs tuilab runs 2016 tokens
through the transformer body and the LM head at 1265 answer positions; TRL, by
our count of its padded rows, runs 4144 tokens through both (chosen and
rejected as separate padded rows, logits everywhere): 2.2x the forward FLOPs, and the backward (input gradients through
the frozen base) scales the same way. aten::mm is 75% of a tuilab step's CPU
time (torch profiler), so casts, inference_mode and Python overhead cannot
move the ratio by more than a few percent.
Earlier figures in this file (0.97x TRL fastest) timed TRL's `train()` only,
which in TRL 1.12 leaves out its reference pass (run in the constructor with
`precompute_ref_log_probs`) while tuilab's span included its own, at 2 threads
each on the loaded 2-core machine; they are superseded by the above.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("tuilab", "trl-default", "trl-fast")
EXTRA = ("tuilab-plain",)
LR = 5e-5

SUBJECTS = ["France", "Japan", "Peru", "Kenya", "Canada", "Norway", "Egypt", "Chile", "India", "Spain"]
QUESTIONS = [
    "Answer briefly: what is the capital of {s}?",
    "Which city is the capital of {s}? Keep it short.",
    "Quick question, what's {s}'s capital city?",
    "Name the capital of {s} in a sentence.",
    "In one line: where does {s} keep its government?",
    "Tell me the capital city of {s}, please.",
]
GOOD = "The capital of {s} is a large old city, home to its government and many long avenues."
BAD = "I am not sure about {s}; capitals move around, so it is hard to say which."


def make_data(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = SUBJECTS[i % len(SUBJECTS)]
        prompt = rng.choice(QUESTIONS).format(s=s) + f" ({i})"
        good, bad = GOOD.format(s=s), BAD.format(s=s)
        if rng.random() < 0.5:  # vary lengths a little, as real data does
            good = good.replace(" long", "")
        out.append({"prompt": prompt, "chosen": good, "rejected": bad})
    return out


# ------------------------------------------------------------------ workers


def run_tuilab(args: argparse.Namespace, data: list[dict], share_prefix: bool = True) -> dict:
    from tuilab.config import DPOConfig, LoraSettings
    from tuilab.modeling.loading import load_model
    from tuilab.records import PreferencePair
    from tuilab.training.dpo import train_dpo

    pairs = [PreferencePair(i, i, [{"role": "user", "content": d["prompt"]}], d["chosen"], d["rejected"])
             for i, d in enumerate(data)]
    cfg = DPOConfig(base_model=args.model, epochs=args.epochs, batch_size=args.batch, eval_fraction=0.0,
                    checkpoint_every=0, sample_every=0, min_pairs=1, learning_rate=LR, beta=0.1, loss="sigmoid",
                    lora=LoraSettings(r=8, alpha=16, dropout=0.0, target_modules="all-linear"),
                    share_prefix=share_prefix)
    base = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = train_dpo(cfg, pairs, base=base, output_dir=tmp, sink=lambda e: None)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps_s = args.pairs * args.epochs / metrics["train/pairs_per_s"]
    return {"seconds": seconds, "cpu_seconds": cpu, "loss": metrics.get("loss"), "setup_s": seconds - steps_s,
            "steps_s": steps_s, "accuracy": metrics.get("rewards/accuracies")}


def _tolerant_dataset_hashing() -> None:
    """`datasets` fingerprints a table by pickling it with dill, which fails on this pyarrow build
    (its MonthDayNano type claims to live in `builtins`); fall back to a random fingerprint, which
    `datasets` itself does for anything it cannot hash. Only caching is affected, not the training."""
    import uuid

    import datasets.fingerprint as fp

    original = fp.Hasher.hash.__func__

    def tolerant(cls, value):
        try:
            return original(cls, value)
        except Exception:
            return uuid.uuid4().hex

    fp.Hasher.hash = classmethod(tolerant)


def run_trl(args: argparse.Namespace, data: list[dict], fast: bool) -> dict:
    _tolerant_dataset_hashing()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(args.model)
    tok.pad_token = "<|endoftext|>"  # pad must differ from EOS (SmolLM2 uses <|im_end|> for both), as in tuilab
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    rows = [{"prompt": [{"role": "user", "content": d["prompt"]}],
             "chosen": [{"role": "assistant", "content": d["chosen"]}],
             "rejected": [{"role": "assistant", "content": d["rejected"]}]} for d in data]
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = dict(
            output_dir=tmp, per_device_train_batch_size=args.batch, num_train_epochs=args.epochs, bf16=False,
            fp16=False, use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000,
            disable_tqdm=True, dataloader_num_workers=0, seed=0, learning_rate=LR, beta=0.1,
        )
        if fast:
            kwargs.update(gradient_checkpointing=False, precompute_ref_log_probs=True,
                          precompute_ref_batch_size=args.batch)
        config = DPOConfig(**kwargs)
        # The constructor tokenises, adds the adapter and (precompute_ref_log_probs=True) runs the
        # whole reference pass: the same work tuilab's train_dpo does, so both spans start here.
        t0, c0 = time.perf_counter(), time.process_time()
        trainer = DPOTrainer(
            model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok,
            peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                   task_type="CAUSAL_LM"),
        )
        t1 = time.perf_counter()
        out = trainer.train()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "loss": out.training_loss, "setup_s": t1 - t0,
            "steps_s": seconds - (t1 - t0), "gradient_checkpointing": bool(config.gradient_checkpointing)}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = make_data(args.pairs)
    if args.worker == "tuilab":
        res = run_tuilab(args, data)
    elif args.worker == "tuilab-plain":
        res = run_tuilab(args, data, share_prefix=False)
    else:
        res = run_trl(args, data, fast=args.worker == "trl-fast")
    n = args.pairs * args.epochs
    # CPU time of all threads over the same span: less sensitive than wall time to a busy machine.
    res.update({"config": args.worker, "pairs_per_s": n / res["seconds"], "pairs_per_cpu_s": n / res["cpu_seconds"]})
    print("RESULT " + json.dumps(res), flush=True)


# ------------------------------------------------------------------ orchestration


def _argv(args: argparse.Namespace) -> list[str]:
    return ["--model", args.model, "--pairs", str(args.pairs), "--batch", str(args.batch), "--threads",
            str(args.threads), "--epochs", str(args.epochs)]


def measure(args: argparse.Namespace) -> None:
    """Middle process: run one worker as our only child, then read its peak RSS."""
    cmd = [sys.executable, __file__, "--worker", args.measure, *_argv(args)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        print("RESULT " + json.dumps({"config": args.measure, "error": "\n".join(tail)}), flush=True)
        return
    res = json.loads(lines[-1][len("RESULT "):])
    res["peak_rss_gib"] = peak_kib / (1024 * 1024)
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {CONFIGS + EXTRA}")
    parser.add_argument("--repeats", type=int, default=1, help="run each config this many times (round-robin), keep the best")
    parser.add_argument("--json", action="store_true", help="also print all results as one JSON line")
    parser.add_argument("--worker", choices=CONFIGS + EXTRA, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=CONFIGS + EXTRA, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.measure:
        return measure(args)
    if not Path(args.model).is_dir():
        raise SystemExit(f"{args.model}: no model folder; run `tuilab models setup` first or pass --model")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if any(c.startswith("trl") for c in configs):
        try:
            import trl  # noqa: F401
        except ImportError:
            raise SystemExit("TRL is not importable: install it into its own folder and put that on "
                             "PYTHONPATH (see the top of this file), or --configs tuilab") from None
    print(f"model {args.model}\n{args.pairs} pairs × {args.epochs} epoch(s), batch {args.batch}, fp32, LoRA r=8 "
          f"all-linear, {args.threads} threads; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, dict] = {}
    # Round-robin over repeats; each config keeps its best run (a busy machine only ever slows a run down).
    for config in [c for _ in range(args.repeats) for c in configs]:
        started = time.monotonic()
        load = os.getloadavg()[0]
        out = subprocess.run([sys.executable, __file__, "--measure", config, *_argv(args)], capture_output=True,
                             text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        res = json.loads(line[-1][len("RESULT "):]) if line else {"config": config, "error": out.stderr[-2000:]}
        res["wall_s"] = time.monotonic() - started
        res["load_before"] = load
        if "error" in res:
            print(f"{config:12s} FAILED:\n{res['error']}")
            continue
        best = results.get(config)
        # Each configuration keeps its least disturbed run: the one with the most pairs per CPU-second
        # (a busy machine slows a run's CPU time a little, its wall time a lot, and unevenly).
        if best is None or res["pairs_per_cpu_s"] > best["pairs_per_cpu_s"]:
            results[config] = res
        print(f"{config:12s} {res['pairs_per_s']:6.3f} pairs/s ({res['pairs_per_cpu_s']:.3f} per CPU-s)   "
              f"peak RSS {res['peak_rss_gib']:.2f} GiB   (training {res['seconds']:.1f} s = setup "
              f"{res['setup_s']:.1f} + steps {res['steps_s']:.1f}, {res['wall_s']:.0f} s with loading; "
              f"loss {res['loss']:.3f}; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)", flush=True)
    if args.repeats > 1:
        print("kept (most pairs per CPU-s):")
        for config, res in results.items():
            print(f"  {config:12s} {res['pairs_per_s']:6.3f} pairs/s ({res['pairs_per_cpu_s']:.3f} per CPU-s)   "
                  f"peak RSS {res['peak_rss_gib']:.2f} GiB")
    ours = results.get("tuilab")
    trl = {k: v for k, v in results.items() if k.startswith("trl")}

    def ratios(a: dict, b: dict) -> str:
        return (f"{a['pairs_per_cpu_s'] / b['pairs_per_cpu_s']:.2f}x pairs per CPU-s, "
                f"{a['pairs_per_s'] / b['pairs_per_s']:.2f}x pairs/s, {a['peak_rss_gib'] / b['peak_rss_gib']:.2f}x "
                "peak RSS")

    if ours and trl:
        if "trl-default" in trl:
            print(f"tuilab / TRL default: {ratios(ours, trl['trl-default'])} (goals: >= 1.5x speed, <= 1x memory)")
        name, best = max(trl.items(), key=lambda kv: kv[1]["pairs_per_cpu_s"])
        print(f"tuilab / TRL fastest ({name}): {ratios(ours, best)} (goals: >= 1.2x speed, <= 1x memory)")
        if "trl-fast" in trl:  # both without the reference pass each runs once before its steps
            f = trl["trl-fast"]
            print(f"steps alone, tuilab / trl-fast: {f['steps_s'] / ours['steps_s']:.2f}x (wall time)")
        print("(With one thread per run, pairs per CPU-s is pairs/s on an idle machine; on a loaded one it is the "
              "ratio to read: wall time follows the CPU share each run happened to get.)")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
