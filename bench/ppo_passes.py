"""PPO's forward passes, packed against padded: the same rollout, the same rows, one process.

    tuilab models setup            # once: imports models/smollm2-135m-instruct
    python bench/ppo_passes.py [--threads 2] [--repeats 5]

A PPO step runs the policy (forward + backward, one minibatch of 4 rows per pass)
and the reference policy (forward, all 8 rows) over prompt + response. The
padded way gives each row its own line, padded to the longest prompt and the
longest answer; the packed way (`training.ppo._forward_packed`, what PPO uses)
puts the rows into one line, the prompts' common prefix (the chat template's
system prompt) once, no padding. The rollout is SmolLM2-135M-Instruct's own
answers to 8 short questions (temperature 0.9, up to 48 tokens), so answers end
at different lengths as they do early in a PPO run; `--cap` forces all to 48
tokens (no EOS), as late in the length-hack scenario. Medians of `--repeats`
interleaved runs; the two ways' log-probabilities are compared too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ["What is the capital of France?", "How far is the Moon from Earth?", "Who wrote Hamlet?",
             "What is 7 times 8?", "Name the largest ocean.", "What gas do plants absorb?",
             "What is the boiling point of water?", "Who painted the Mona Lisa?"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "smollm2-135m-instruct"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cap", action="store_true", help="every answer runs to the 48-token cap")
    args = ap.parse_args()

    import torch

    from tuilab.config import PPOConfig
    from tuilab.modeling.chat import as_messages, prompt_ids
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.trunk import shared_start
    from tuilab.training import ppo
    from tuilab.training import ppo_math as pm

    torch.set_num_threads(args.threads)
    base = load_model(args.model)
    cfg = PPOConfig(max_new_tokens=48, temperature=0.9, batch_size=8, minibatch_size=4)
    model = ppo.prepare_policy(base, cfg)
    body, head = ppo._body_and_head(model)
    ids = [prompt_ids(base.tokenizer, as_messages([{"role": "user", "content": "Answer briefly: " + q}]))
           for q in QUESTIONS]
    if args.cap:
        from tuilab.modeling.generation import sample

        sb = sample(model, base.tokenizer, ids, max_new_tokens=48, temperature=0.9, eos_token_ids=[-1],
                    generator=torch.Generator().manual_seed(0))
        am = torch.cat([sb.query_mask, sb.response_mask], 1)
        plain = ppo.Rollout(torch.cat([sb.query_ids, sb.response_ids], 1), am, ppo._positions(am),
                            sb.query_ids.shape[1], sb.response_ids, sb.response_mask.float(),
                            torch.zeros(8, dtype=torch.bool), [], [], sb.lengths)
    else:
        plain, _ = ppo._generate(model, base.tokenizer, ids, cfg, torch.Generator().manual_seed(0))
    packed = replace(plain, packed=True, prefix=shared_start(ids, minimum=1))
    lengths = [int(n) for n in plain.mask.sum(1)]
    print(f"8 rows: prompts {min(map(len, ids))}–{max(map(len, ids))} tokens ({packed.prefix} in common), "
          f"answers {min(lengths)}–{max(lengths)} tokens; {args.threads} threads")

    def update(ro):
        logits, h, _ = ppo._forward(body, head, ro, torch.arange(4), 0.9)
        (logits.logsumexp(-1).mean() + h.mean()).backward()

    def reference(ro):
        with torch.no_grad():
            return ppo._forward(body, head, ro, torch.arange(8), 0.9)

    with torch.no_grad():
        (la, _, w), (lb, _, _) = reference(plain), reference(packed)
        m = plain.mask[:, :w]
        lp = [pm.logprobs_from_logits(x, plain.response_ids[:, :w], 0.9) for x in (la, lb)]
        gap = float(((lp[0] - lp[1]).abs() * m).max())
    print(f"largest log-prob difference, packed vs padded: {gap:.2e}")
    for name, fn in (("policy forward + backward, 4 rows", update), ("reference forward, 8 rows", reference)):
        for ro in (plain, packed):  # warm-up
            fn(ro)
        times: dict[str, list[float]] = {"padded": [], "packed": []}
        for _ in range(args.repeats):
            for label, ro in (("padded", plain), ("packed", packed)):
                t = time.perf_counter()
                fn(ro)
                times[label].append(time.perf_counter() - t)
        a, b = statistics.median(times["padded"]), statistics.median(times["packed"])
        print(f"{name:36s} padded {a:6.3f} s   packed {b:6.3f} s   {a / b:4.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
