"""Sampling throughput: tuilab's decode loop against plain `model.generate`, same model, same run.

    tuilab models setup            # once: imports models/smollm2-135m-instruct
    python bench/generate.py [--repeats 5] [--batch 8] [--new 48] [--model PATH] [--4bit]

"useful" tokens are the ones a caller keeps: each row up to and including its
EOS. `model.generate` keeps decoding rows that already ended, so its total
tokens/s overstates what it delivers; tuilab drops finished rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Explain photosynthesis in two sentences.",
    "Give me three tips for sleeping better.",
    "What is 17 times 23?",
    "Say hello in Spanish.",
    "Why is the sky blue?",
    "Name a famous painting by Leonardo da Vinci.",
    "Describe a cat in one sentence.",
    "What does a compiler do?",
    "Suggest a name for a goldfish.",
    "How many legs does a spider have?",
]


def useful_tokens(rows: list[list[int]], stops: set[int]) -> int:
    total = 0
    for row in rows:
        n = 0
        for t in row:
            n += 1
            if t in stops:
                break
        total += n
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.8, help="0: greedy (identical tokens)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--4bit", dest="four_bit", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default; 1 is far steadier on a busy machine)")
    args = parser.parse_args()

    import torch

    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.generation import sample, stop_token_ids
    from tuilab.modeling.loading import load_model

    if not (Path(args.model) / "config.json").is_file():
        print(f"no model at {args.model}: run `tuilab models setup` first", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, four_bit=args.four_bit)
    model, tok = loaded.model, loaded.tokenizer
    stops = stop_token_ids(tok, model)
    print(f"model {args.model} ({'nf4' if args.four_bit else 'fp32'}, {loaded.device}), "
          f"batch {args.batch} × {args.new} new tokens, temperature {args.temperature}, "
          f"{torch.get_num_threads()} threads, {args.warmup} warm-up + {args.repeats} timed repeats")

    def batch_ids(i: int) -> list[list[int]]:
        picked = [PROMPTS[(i * args.batch + j) % len(PROMPTS)] for j in range(args.batch)]
        return [prompt_ids(tok, [{"role": "user", "content": p}]) for p in picked]

    def run_tuilab(i: int) -> tuple[float, int, int]:
        gen = torch.Generator().manual_seed(i)
        t0 = time.perf_counter()
        out = sample(model, tok, batch_ids(i), max_new_tokens=args.new, temperature=args.temperature,
                     generator=gen)
        dt = time.perf_counter() - t0
        useful = sum(out.lengths)
        return dt, useful, useful  # no wasted rows: total == useful

    def run_hf(i: int) -> tuple[float, int, int]:
        torch.manual_seed(i)
        enc = tok.pad({"input_ids": batch_ids(i)}, return_tensors="pt").to(loaded.device)
        t0 = time.perf_counter()
        if args.temperature > 0:
            mode = dict(do_sample=True, temperature=args.temperature, top_p=1.0, top_k=0)
        else:  # greedy: both produce identical tokens, so the ratio is pure loop cost
            mode = dict(do_sample=False)
        with torch.inference_mode():
            out = model.generate(**enc, **mode, max_new_tokens=args.new, eos_token_id=stops,
                                 pad_token_id=tok.pad_token_id)
        dt = time.perf_counter() - t0
        new = out[:, enc["input_ids"].shape[1]:]
        return dt, useful_tokens(new.tolist(), set(stops)), new.numel()

    results: dict[str, list[tuple[float, int, int]]] = {"tuilab": [], "hf": []}
    for i in range(args.warmup):
        run_tuilab(i)
        run_hf(i)
    for i in range(args.repeats):
        # Interleaved so drift (other processes, thermal) hits both alike.
        results["tuilab"].append(run_tuilab(100 + i))
        results["hf"].append(run_hf(100 + i))

    summary = {}
    for name, rows in results.items():
        secs = sum(r[0] for r in rows)
        useful = sum(r[1] for r in rows)
        total = sum(r[2] for r in rows)
        per_run = [r[1] / r[0] for r in rows]
        summary[name] = useful / secs
        print(f"{name:>7}: {useful / secs:6.1f} useful tok/s  {total / secs:6.1f} total tok/s  "
              f"{secs / len(rows):5.2f} s/batch  mean length {useful / len(rows) / args.batch:4.1f}  "
              f"(per-run useful tok/s median {statistics.median(per_run):.1f})")
    print(f"ratio tuilab/hf useful tok/s: {summary['tuilab'] / summary['hf']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
