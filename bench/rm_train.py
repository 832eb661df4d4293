"""Reward-model training throughput: tuilab against TRL's RewardTrainer, same model, same data, one run.

    tuilab models setup                 # once: imports models/smollm2-135m-instruct
    pip install trl                     # bench-only; the lab never imports it
    python bench/rm_train.py [--pairs 96] [--batch 8] [--threads 2] [--model PATH]

Every configuration runs in its own subprocess (so one's memory cannot help
another) through a small middle process that reads the worker's peak RSS with
`getrusage(RUSAGE_CHILDREN)`. All use SmolLM2-135M-Instruct in fp32, LoRA r=8
on all linear layers, batch 8, the same synthetic conversational pairs
(~63 tokens each side, chat template included). Throughput counts only steps
after a warm-up: from the start of step `warmup + 1` to the start of the last
step.

Configurations: tuilab (defaults); TRL default (gradient checkpointing on, its
default); TRL with gradient checkpointing off (its fastest). `--configs
tuilab-plain` adds tuilab with prompt sharing off (chosen and rejected as
separate rows, as TRL runs them), to show what the sharing earns.

Measured here (2026-11-29, quiet 2-core machine, 96 pairs, ~64 tokens/side):
tuilab 3.7–4.4 pairs/s (peak RSS 2.3 GiB); TRL 1.16 default 1.51–1.56 (2.3 GiB);
TRL without checkpointing 2.20–2.31 (3.5 GiB): 2.7–2.8x and 1.7–1.9x.
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

CONFIGS = ("tuilab", "trl-default", "trl-no-ckpt")
# Not run by default: tuilab with prompt sharing off, to show what the packing itself earns.
EXTRA = ("tuilab-plain",)

SUBJECTS = ["France", "Japan", "Peru", "Kenya", "Canada", "Norway", "Egypt", "Chile", "India", "Spain"]
# Varied openings: only the chat template's system prompt is common to a batch, as with real prompts.
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
    from tuilab.config import LoraSettings, RewardConfig
    from tuilab.records import PreferencePair
    from tuilab.training.events import RunControl
    from tuilab.training.reward import train_reward_model

    class TimedControl(RunControl):
        """check() runs at the start of every step: the same instant TRL's on_step_begin marks."""

        def __init__(self) -> None:
            super().__init__()
            self.begins: list[float] = []

        def check(self) -> None:
            self.begins.append((time.perf_counter(), time.process_time()))
            super().check()

    pairs = [
        PreferencePair(i, i, [{"role": "user", "content": d["prompt"]}], d["chosen"], d["rejected"])
        for i, d in enumerate(data)
    ]
    cfg = RewardConfig(
        base_model=args.model, epochs=1, batch_size=args.batch, eval_fraction=0.0, checkpoint_every=0,
        min_pairs=1, lora=LoraSettings(r=8, alpha=16, dropout=0.0, target_modules="all-linear"),
        share_prefix=share_prefix,
    )
    control = TimedControl()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train_reward_model(cfg, pairs, base=args.model, output_dir=tmp, sink=lambda e: None,
                                     control=control)
    return {"begins": control.begins, "loss": metrics.get("train/loss"), "tokens": _tuilab_tokens(args.model, data)}


def _tuilab_tokens(model: str, data: list[dict]) -> float:
    from transformers import AutoTokenizer

    from tuilab.modeling.chat import scored_ids

    tok = AutoTokenizer.from_pretrained(model)
    lens = [
        len(scored_ids(tok, [{"role": "user", "content": d["prompt"]}], d[side]))
        for d in data
        for side in ("chosen", "rejected")
    ]
    return sum(lens) / len(lens)


def run_trl(args: argparse.Namespace, data: list[dict], checkpointing: bool | None) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.begins: list[float] = []

        def on_step_begin(self, *a, **k):
            self.begins.append((time.perf_counter(), time.process_time()))

    tok = AutoTokenizer.from_pretrained(args.model)
    tok.pad_token = "<|endoftext|>"  # pad must differ from EOS (SmolLM2 uses <|im_end|> for both), as in tuilab
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    rows = [
        {
            "chosen": [{"role": "user", "content": d["prompt"]}, {"role": "assistant", "content": d["chosen"]}],
            "rejected": [{"role": "user", "content": d["prompt"]}, {"role": "assistant", "content": d["rejected"]}],
        }
        for d in data
    ]
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = dict(
            output_dir=tmp, per_device_train_batch_size=args.batch, num_train_epochs=1, bf16=False, fp16=False,
            use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000, disable_tqdm=True,
            dataloader_num_workers=0, seed=0, max_length=512,
        )
        if checkpointing is not None:
            kwargs["gradient_checkpointing"] = checkpointing
        config = RewardConfig(**kwargs)
        trainer = RewardTrainer(
            model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok,
            peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                   task_type="SEQ_CLS"),
            callbacks=[timer],
        )
        ds = trainer.train_dataset
        if "chosen_input_ids" in getattr(ds, "column_names", []):
            lens = [len(x) for x in ds["chosen_input_ids"]] + [len(x) for x in ds["rejected_input_ids"]]
        else:  # what its chat template makes of each side
            lens = []
            for row in rows:
                for side in ("chosen", "rejected"):
                    out = tok.apply_chat_template(row[side], tokenize=True)
                    lens.append(len(out["input_ids"] if hasattr(out, "keys") else out))
        tokens = sum(lens) / len(lens)
        out = trainer.train()
    return {"begins": timer.begins, "loss": out.training_loss, "tokens": tokens,
            "gradient_checkpointing": bool(config.gradient_checkpointing)}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = make_data(args.pairs)
    if args.worker == "tuilab":
        res = run_tuilab(args, data)
    elif args.worker == "tuilab-plain":
        res = run_tuilab(args, data, share_prefix=False)
    elif args.worker == "trl-default":
        res = run_trl(args, data, None)
    else:
        res = run_trl(args, data, False)
    begins = res.pop("begins")
    w = args.warmup
    steps = len(begins)
    timed_steps = steps - 1 - w
    if timed_steps < 1:
        raise SystemExit(f"too few steps ({steps}) for a warm-up of {w}: raise --pairs")
    seconds = begins[-1][0] - begins[w][0]
    cpu_seconds = begins[-1][1] - begins[w][1]
    res.update({
        "config": args.worker, "steps": steps, "timed_pairs": timed_steps * args.batch,
        "timed_seconds": seconds, "pairs_per_s": timed_steps * args.batch / seconds,
        # CPU time of all threads: less sensitive than wall time to other work on a shared machine.
        "pairs_per_cpu_s": timed_steps * args.batch / cpu_seconds,
    })
    print("RESULT " + json.dumps(res), flush=True)


# ------------------------------------------------------------------ orchestration


def measure(args: argparse.Namespace) -> None:
    """Middle process: run one worker as our only child, then read its peak RSS."""
    cmd = [sys.executable, __file__, "--worker", args.measure, "--model", args.model, "--pairs", str(args.pairs),
           "--batch", str(args.batch), "--threads", str(args.threads), "--warmup", str(args.warmup)]
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
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the timing")
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
            raise SystemExit("TRL is not installed: `pip install trl` (bench only), or --configs tuilab") from None
    print(f"model {args.model}\n{args.pairs} pairs, batch {args.batch}, fp32, LoRA r=8 all-linear, "
          f"{args.threads} threads, warm-up {args.warmup} steps; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, dict] = {}
    # Round-robin over repeats; each config keeps its best run (a busy machine only ever slows a run down).
    for config in [c for _ in range(args.repeats) for c in configs]:
        started = time.monotonic()
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--measure", config, "--model", args.model, "--pairs", str(args.pairs),
               "--batch", str(args.batch), "--threads", str(args.threads), "--warmup", str(args.warmup)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        res = json.loads(line[-1][len("RESULT "):]) if line else {"config": config, "error": out.stderr[-2000:]}
        res["wall_s"] = time.monotonic() - started
        res["load_before"] = load
        if "error" in res:
            print(f"{config:12s} FAILED:\n{res['error']}")
            continue
        best = results.get(config)
        if best is None or res["pairs_per_s"] > best["pairs_per_s"]:
            results[config] = res
        tokens = f"{res['tokens']:.0f}" if res.get("tokens") else "?"
        print(f"{config:12s} {res['pairs_per_s']:6.2f} pairs/s ({res['pairs_per_cpu_s']:.2f} per CPU-s)   "
              f"peak RSS {res['peak_rss_gib']:.2f} GiB   "
              f"~{tokens} tokens/seq   ({res['timed_pairs']} pairs timed in {res['timed_seconds']:.1f} s; "
              f"{res['wall_s']:.0f} s with loading; load average {load:.1f} before)", flush=True)
    if args.repeats > 1:
        print("best of each:")
        for config, res in results.items():
            print(f"  {config:12s} {res['pairs_per_s']:6.2f} pairs/s   peak RSS {res['peak_rss_gib']:.2f} GiB")
    ours = results.get("tuilab", {}).get("pairs_per_s")
    trl = {k: v["pairs_per_s"] for k, v in results.items() if k.startswith("trl") and "pairs_per_s" in v}
    if ours and trl:
        if "trl-default" in trl:
            print(f"tuilab / TRL default      = {ours / trl['trl-default']:.2f}x  (goal >= 1.5x)")
        best = max(trl.values())
        print(f"tuilab / TRL best         = {ours / best:.2f}x  (goal >= 1.2x)")
        cpu = {k: v["pairs_per_cpu_s"] for k, v in results.items() if "pairs_per_cpu_s" in v}
        if "tuilab" in cpu and len(cpu) > 1:
            parts = ", ".join(f"{k} {cpu['tuilab'] / v:.2f}x" for k, v in cpu.items() if k != "tuilab")
            print(f"per CPU-second, tuilab vs: {parts}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
