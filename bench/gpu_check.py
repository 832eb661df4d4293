"""The GPU path, checked: reward model and PPO in bf16 and in 4-bit on CUDA.

    python bench/gpu_check.py [--model PATH] [--rm-steps 8] [--ppo-steps 3]

For each precision (bf16, nf4 4-bit with bf16 compute) it

1. trains a reward model for a few steps (LoRA, the lab's trainer) on
   synthetic pairs whose chosen answer ends in "Thank you." — learnable, and
   independent of length;
2. samples a PPO-sized batch with the lab's sampler and compares what the
   sampler saw (the trunk's hidden state at every decoding step, which PPO
   reuses for its old log-probs and values) with one fresh forward pass over
   prompt + response: max |Δ log-prob| and max |Δ value| over real tokens;
3. runs a few PPO updates against that reward model and reports the KL at
   step 1 (the policy starts as the reference, so anything but ~0 is
   numerical disagreement between the sampling and the reference pass) and
   the loop's own first-minibatch ratio deviation;
4. prints peak GPU memory of each phase against one inference copy of the
   base in that precision (the weights alone, measured right after loading).

On a machine without CUDA it prints "no GPU" and exits 0. `--cpu-dry-run`
runs the same code on the CPU with a tiny random model (its "bf16" mode is
fp32 there), to check the script itself; its numbers are not GPU numbers.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GiB = 1024**3
WORDS = ["sea", "wind", "rain", "shore", "answer", "river", "stone", "light", "cloud", "field"]


def pairs(n: int, seed: int = 0):
    from tuilab.records import PreferencePair

    rng = random.Random(seed)
    out = []
    for i in range(n):
        stem = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize() + "."
        out.append(PreferencePair(comparison_id=i + 1, prompt_id=i % 16 + 1,
                                  messages=[{"role": "user", "content": f"Describe item {i % 16}."}],
                                  chosen=f"{stem} Thank you.", rejected=f"{stem} Whatever.", split="train"))
    return out


def prompts(n: int = 16):
    from tuilab.records import Prompt

    return [Prompt(id=i + 1, messages=[{"role": "user", "content": f"Describe item {i} briefly."}],
                   text=f"Describe item {i} briefly.") for i in range(n)]


class Memory:
    """Peak allocated bytes since the last reset (CUDA), or nothing on the CPU."""

    def __init__(self, device) -> None:
        self.cuda = device.type == "cuda"

    def reset(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def allocated(self) -> float:
        import torch

        return torch.cuda.memory_allocated() / GiB if self.cuda else float("nan")

    def peak(self) -> float:
        import torch

        if not self.cuda:
            return float("nan")
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / GiB


def peak_line(mem: Memory, copy: float) -> str:
    if not mem.cuda:
        return "peak GPU memory – (CPU)"
    return f"peak GPU memory {mem.peak():.3f} GiB = {mem.peak() / copy:.2f}x one inference copy"


def sampler_vs_fresh(base, n_prompts: int, max_new_tokens: int, temperature: float, seed: int) -> dict[str, float]:
    """Max |Δ log-prob| and |Δ value| between the sampler's hidden states and one fresh forward."""
    import torch

    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.generation import make_generator, sample
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.trunk import backbone_of, hidden_size_of

    model, tok = base.model, base.tokenizer
    body, lm_head = backbone_of(model), model.get_output_embeddings()
    device = next(body.parameters()).device
    value = ScalarHead(hidden_size_of(model), generator=torch.Generator().manual_seed(seed)).to(device)
    ids = [prompt_ids(tok, p.messages) for p in prompts(n_prompts)]
    seen: list[torch.Tensor] = []

    def hook(module, args, output):
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        seen.append(hidden[:, -1].float())

    handle = body.register_forward_hook(hook)
    try:
        sb = sample(model, tok, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                    generator=make_generator(seed, device))
    finally:
        handle.remove()
    lengths = sb.lengths
    if len(seen) != max(lengths):
        print(f"  note: the sampler ran the trunk {len(seen)} times for {max(lengths)} positions; "
              "the comparison below lines calls up with positions and is only meaningful if they match")
    # Rows leave the sampler's batch when they end, in order; call k holds the rows still running.
    h_sampler = torch.zeros(len(lengths), max(lengths), seen[0].shape[-1], device=device)
    for k, h in enumerate(seen[: max(lengths)]):
        live = [i for i, n in enumerate(lengths) if n > k]
        h_sampler[live, k] = h
    input_ids = torch.cat([sb.query_ids, sb.response_ids], 1)
    mask = torch.cat([sb.query_mask, sb.response_mask], 1)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    q = sb.query_ids.shape[1]
    with torch.no_grad():
        out = body(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        h_fresh = hidden[:, q - 1 : q - 1 + max(lengths)].float()
        real = sb.response_mask[:, : max(lengths)].bool()
        targets = sb.response_ids[:, : max(lengths)]

        def logp(h):
            logits = lm_head(h.to(lm_head.weight.dtype)).float() / temperature
            return torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

        dlp = (logp(h_sampler) - logp(h_fresh)).abs()[real]
        dv = (value(h_sampler) - value(h_fresh)).abs()[real]
    return {"tokens": int(real.sum()), "max_dlogp": float(dlp.max()), "mean_dlogp": float(dlp.mean()),
            "max_dvalue": float(dv.max())}


def check(mode: str, model_path: Path, device: str, args, work: Path) -> None:
    import torch

    from tuilab.config import LoraSettings, PPOConfig, RewardConfig
    from tuilab.modeling.loading import load_model
    from tuilab.training.events import Metrics
    from tuilab.training.ppo import train_ppo
    from tuilab.training.reward import train_reward_model

    four_bit = mode == "4bit"
    dev = torch.device(device)
    mem = Memory(dev)
    mem.reset()
    before = mem.allocated()
    base = load_model(model_path, four_bit=four_bit, device=device)
    copy = mem.allocated() - before  # one inference copy of the base in this precision
    print(f"\n== {mode}: {model_path.name}, first-parameter dtype {next(base.model.parameters()).dtype}, "
          f"4-bit {base.four_bit}; one inference copy {copy:.3f} GiB")

    mem.reset()
    t = time.perf_counter()
    rm_cfg = RewardConfig(base_model=str(model_path), four_bit=four_bit, lora=LoraSettings(r=8),
                          learning_rate=2e-4, epochs=1, batch_size=8, min_pairs=8, eval_fraction=0.25,
                          warmup_ratio=0.0, checkpoint_every=0)
    rm_dir = work / f"rm-{mode}"
    final = train_reward_model(rm_cfg, pairs(args.rm_steps * 8 * 4 // 3), base=base, output_dir=rm_dir,
                               sink=lambda e: None)
    print(f"RM   {final['steps']} steps in {time.perf_counter() - t:.1f} s; eval accuracy "
          f"{final.get('eval/accuracy', float('nan')):.3f}; {peak_line(mem, copy)}")
    del base
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    base = load_model(model_path, four_bit=four_bit, device=device)
    fid = sampler_vs_fresh(base, args.batch, args.new_tokens, 0.9, seed=0)
    print(f"sampler vs fresh forward over {fid['tokens']} tokens: max |Δlogp| {fid['max_dlogp']:.2e} "
          f"(mean {fid['mean_dlogp']:.2e}), max |Δvalue| {fid['max_dvalue']:.2e}")

    mem.reset()
    t = time.perf_counter()
    events: list = []
    ppo_cfg = PPOConfig(base_model=str(model_path), four_bit=four_bit, batch_size=args.batch, minibatch_size=4,
                        max_new_tokens=args.new_tokens, total_updates=args.ppo_steps, checkpoint_every=0,
                        sample_every=0, seed=0)
    train_ppo(ppo_cfg, prompts(), base=base, reward=str(rm_dir), output_dir=work / f"ppo-{mode}",
              sink=events.append)
    steps = {e.step: e.values for e in events if isinstance(e, Metrics)}
    first = steps[min(steps)]
    print(f"PPO  {len(steps)} updates in {time.perf_counter() - t:.1f} s; KL at step 1 "
          f"{first.get('objective/kl', float('nan')):.2e} (k3 {first.get('objective/kl_k3', float('nan')):.2e}); "
          f"first-minibatch |log ratio| max {first.get('policy/first_ratio_dev', float('nan')):.2e}; "
          + peak_line(mem, copy))
    del base
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="base model folder (default: the lab's default model)")
    parser.add_argument("--modes", default="bf16,4bit", help="comma-separated: bf16, 4bit")
    parser.add_argument("--rm-steps", type=int, default=8)
    parser.add_argument("--ppo-steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run on the CPU with a tiny random model, to check this script (not GPU figures)")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="tuilab-gpu-check-") as tmp:
        work = Path(tmp)
        if args.cpu_dry_run:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from tiny import save_tiny_model

            torch.set_num_threads(1)
            model_path, device = save_tiny_model(work / "tiny64", hidden=64), "cpu"
            print("CPU dry run on a tiny random model: checks the script, not the GPU path")
        else:
            if not torch.cuda.is_available():
                print("no GPU: CUDA is not available here, nothing to check")
                return 0
            from tuilab.config import DEFAULT_MODEL, LabPaths
            from tuilab.modeling.registry import find_model

            model_path = Path(args.model) if args.model else find_model(DEFAULT_MODEL, LabPaths.resolve().models)
            device = "cuda"
            print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
                  f"bf16 {torch.cuda.is_bf16_supported()}")
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if mode not in ("bf16", "4bit"):
                parser.error(f"--modes: unknown mode {mode!r} (bf16, 4bit)")
            check(mode, model_path, device, args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
