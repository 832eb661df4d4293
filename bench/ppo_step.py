"""Seconds per PPO update: tuilab against TRL's PPO and RLOO, same model, same sizes, one run.

    tuilab models setup                                   # once: models/smollm2-135m-instruct
    pip install --no-deps --target .venv/trl-1.12 trl==1.12.0   # bench-only peer (PPOTrainer left TRL in 1.13)
    python bench/ppo_step.py [--updates 3] [--threads 2] [--only tuilab,trl-ppo,trl-rloo]

Each configuration runs in its own subprocess and reports its own peak RSS
(`getrusage(RUSAGE_SELF)`), so one's memory cannot hide in another's. All use
SmolLM2-135M-Instruct in fp32, a LoRA r=8 (all linear layers) policy with the
reference = adapters off, 8 rollouts × up to 48 new tokens (stop at EOS,
temperature 0.9), 2 epochs of minibatch 4, and a reward model that is a
freshly initialised scalar head on the base (no training: the timing does not
depend on what it says). TRL's PPO also trains its full value model (that is
how TRL does PPO); tuilab's critic is a value head on the policy.

An "update" is one rollout batch plus its optimisation. The first update of
each run is a warm-up and is not counted; the figure is the median of the
rest; CPU seconds per update (process time) are printed beside it, since on
a shared machine wall time depends on the neighbours and, with one thread, CPU
time does not. Generated tokens/s counts tokens up to and including each row's EOS,
over the time spent generating. Peers run with gradient checkpointing off
(their fastest on a CPU; TRL's configs default it on) unless `--peer-gc`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("tuilab", "trl-ppo", "trl-rloo")
PROMPTS = ROOT / "tuilab" / "data" / "scenarios" / "length_bias" / "prompts.jsonl"


def load_prompts(n: int = 64) -> list[str]:
    rows = [json.loads(line) for line in PROMPTS.read_text().splitlines() if line.strip()]
    return [r["prompt"] for r in rows][:n]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def useful_tokens(ids, eos_ids: set[int], pad_id: int) -> int:
    """Tokens up to and including each row's first EOS (what a user gets, not what was decoded)."""
    total = 0
    for row in ids.tolist():
        n = 0
        for t in row:
            if t == pad_id:
                break
            n += 1
            if t in eos_ids:
                break
        total += n
    return total


# ------------------------------------------------------------------ workers


def prepare_reward(args: argparse.Namespace) -> dict:
    """A reward "run" with an untrained member (zero-delta LoRA adapter + fresh head), in its own process
    so that loading a scratch copy of the base does not count toward tuilab's peak memory."""
    import torch

    from tuilab.config import LoraSettings
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.lora import add_adapter
    from tuilab.modeling.reward_model import save_member, write_manifest
    from tuilab.modeling.trunk import hidden_size_of

    scratch = load_model(args.model)
    peft = add_adapter(scratch.model, "reward-0", LoraSettings())
    hidden = hidden_size_of(peft)
    save_member(peft, ScalarHead(hidden, generator=torch.Generator().manual_seed(0)), args.rm_dir, "reward-0")
    write_manifest(args.rm_dir, base_model=args.model, hidden_size=hidden, members=["reward-0"])
    return {}


def run_tuilab(args: argparse.Namespace) -> dict:
    from tuilab.config import LoraSettings, PPOConfig
    from tuilab.modeling.loading import load_model
    from tuilab.records import Prompt
    from tuilab.training.events import Metrics
    from tuilab.training.ppo import train_ppo

    tmp = Path(tempfile.mkdtemp(prefix="bench-ppo-"))
    base = load_model(args.model)
    prompts = [Prompt(id=i + 1, messages=[{"role": "user", "content": p}], text=p)
               for i, p in enumerate(load_prompts())]
    cfg = PPOConfig(batch_size=args.rollouts, minibatch_size=args.minibatch, max_new_tokens=args.tokens,
                    ppo_epochs=args.epochs, temperature=0.9, total_updates=args.updates + 1, checkpoint_every=0,
                    sample_every=args.sample_every, lora=LoraSettings(r=8, alpha=16))
    steps: list[dict] = []
    marks = [(time.perf_counter(), time.process_time())]

    def sink(e) -> None:
        if isinstance(e, Metrics):
            steps.append(e.values)
            marks.append((time.perf_counter(), time.process_time()))

    train_ppo(cfg, prompts, base=base, reward=args.rm_dir, output_dir=tmp / "ppo", sink=sink)
    timed = steps[1:]
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)][1:]
    gen_tokens = sum(s["time/tokens_per_s"] * s["time/generate_s"] for s in timed)
    gen_time = sum(s["time/generate_s"] for s in timed)
    return {
        "s_per_update": statistics.median(s["time/step_s"] for s in timed),
        "cpu_s_per_update": statistics.median(cpu),
        "gen_tok_s": gen_tokens / gen_time,
        "generate_s": statistics.median(s["time/generate_s"] for s in timed),
        "optimise_s": statistics.median(s["time/update_s"] for s in timed),
        "mean_length": statistics.mean(s["response/length_mean"] for s in timed),
    }


class _GenTimer:
    """Wraps transformers' `generate` to time it and count useful tokens (TRL calls it for rollouts)."""

    def __init__(self, eos_ids: set[int], pad_id: int) -> None:
        from transformers.generation.utils import GenerationMixin

        self.seconds = 0.0
        self.tokens = 0
        self.calls: list[tuple[float, float]] = []
        original = GenerationMixin.generate
        timer = self

        def timed(model, *a, **kw):
            start = time.perf_counter()
            out = original(model, *a, **kw)
            elapsed = time.perf_counter() - start
            seqs = out.sequences if hasattr(out, "sequences") else out
            inputs = kw.get("input_ids", a[0] if a else None)
            prompt_len = inputs.shape[1] if inputs is not None else 0
            timer.seconds += elapsed
            timer.tokens += useful_tokens(seqs[:, prompt_len:], eos_ids, pad_id)
            timer.calls.append((start, elapsed))
            return out

        GenerationMixin.generate = timed


class _StepClock:
    def __init__(self):
        from transformers import TrainerCallback

        clock = self
        self.ends: list[float] = []
        self.cpu: list[float] = []

        class CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                clock.ends.append(time.perf_counter())
                clock.cpu.append(time.process_time())

        self.callback = CB()


def _peer_common(args):
    import torch

    from tuilab.modeling.loading import load_model

    torch.manual_seed(0)
    base = load_model(args.model)  # the same tokenizer fix (pad ≠ EOS) and fp32 weights as tuilab
    tok = base.tokenizer
    eos = {tok.eos_token_id}
    return base, tok, eos


def run_trl_ppo(args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from tuilab.modeling.chat import prompt_ids

    base, tok, eos = _peer_common(args)
    timer = _GenTimer(eos, tok.pad_token_id)
    clock = _StepClock()
    reward = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1)
    for m in (reward, value):
        m.config.pad_token_id = tok.pad_token_id
    ids = [prompt_ids(tok, [{"role": "user", "content": p}]) for p in load_prompts()]
    data = Dataset.from_dict({"input_ids": ids})
    updates = args.updates + 1
    cfg = PPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-ppo-"), per_device_train_batch_size=args.rollouts,
        gradient_accumulation_steps=1, num_mini_batches=args.rollouts // args.minibatch,
        num_ppo_epochs=args.epochs, response_length=args.tokens, stop_token="eos", temperature=0.9,
        total_episodes=args.rollouts * updates, num_sample_generations=0, learning_rate=2e-4, kl_coef=0.05,
        missing_eos_penalty=1.0, local_rollout_forward_batch_size=args.rollouts, report_to=[],
        save_strategy="no", logging_steps=1, use_cpu=True, bf16=False, fp16=False,
        gradient_checkpointing=args.peer_gc, dataloader_num_workers=0, seed=0,
    )
    peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM")
    trainer = PPOTrainer(args=cfg, processing_class=tok, model=base.model, ref_model=None, reward_model=reward,
                         train_dataset=data, value_model=value, peft_config=peft_config)
    trainer.add_callback(clock.callback)
    start, cpu0 = time.perf_counter(), time.process_time()
    trainer.train()
    return _peer_result([start, *clock.ends], [cpu0, *clock.cpu], 1, timer)


def _peer_result(ends: list[float], cpu: list[float], every: int, timer: _GenTimer) -> dict:
    ends, cpu = ends[::every], cpu[::every]
    per = [b - a for a, b in zip(ends, ends[1:], strict=False)][1:]
    per_cpu = [b - a for a, b in zip(cpu, cpu[1:], strict=False)][1:]
    gen = [e for _, e in timer.calls][1:]
    return {"s_per_update": statistics.median(per), "cpu_s_per_update": statistics.median(per_cpu),
            "gen_tok_s": timer.tokens / timer.seconds, "generate_s": statistics.median(gen) if gen else float("nan")}


def run_trl_rloo(args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification
    from trl import RLOOConfig, RLOOTrainer

    base, tok, eos = _peer_common(args)
    timer = _GenTimer(eos, tok.pad_token_id)
    clock = _StepClock()
    reward = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1)
    reward.config.pad_token_id = tok.pad_token_id
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in load_prompts()]})
    # One update = one generation batch of `rollouts` completions (2 per prompt: RLOO needs a group),
    # reused for `epochs` iterations in minibatches of `minibatch`: the same work as a PPO update.
    steps_per_generation = args.rollouts // args.minibatch
    per_update = steps_per_generation * args.epochs
    updates = args.updates + 1
    cfg = RLOOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-rloo-"), per_device_train_batch_size=args.minibatch,
        steps_per_generation=steps_per_generation, num_generations=2, num_iterations=args.epochs,
        max_completion_length=args.tokens, temperature=0.9, beta=0.05, learning_rate=2e-4,
        max_steps=updates * per_update, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True,
        bf16=False, fp16=False, gradient_checkpointing=args.peer_gc, dataloader_num_workers=0, seed=0,
    )
    peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM")
    trainer = RLOOTrainer(model=base.model, reward_funcs=reward, args=cfg, train_dataset=data,
                          processing_class=tok, reward_processing_classes=tok, peft_config=peft_config)
    trainer.add_callback(clock.callback)
    start, cpu0 = time.perf_counter(), time.process_time()
    trainer.train()
    return _peer_result([start, *clock.ends], [cpu0, *clock.cpu], per_update, timer)


WORKERS = {"tuilab": run_tuilab, "trl-ppo": run_trl_ppo, "trl-rloo": run_trl_rloo, "prep": prepare_reward}


# ------------------------------------------------------------------ driver


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    out = WORKERS[args.child](args)
    out["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--updates", type=int, default=3, help="timed updates (after one warm-up)")
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--minibatch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample-every", type=int, default=0,
                        help="tuilab's reference samples for the inspector (0: off, as the peers have none)")
    parser.add_argument("--peer-gc", action="store_true", help="run TRL with gradient checkpointing (its default)")
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    parser.add_argument("--trl-path", default=str(ROOT / ".venv" / "trl-1.12"),
                        help="folder holding trl 1.12 (pip install --no-deps --target …)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", choices=[*CONFIGS, "prep"], help=argparse.SUPPRESS)
    parser.add_argument("--rm-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not Path(args.model, "config.json").exists():
        sys.exit(f"no model at {args.model}: run `tuilab models setup` first")
    results: dict[str, dict] = {}
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    rm_dir = Path(tempfile.mkdtemp(prefix="bench-ppo-rm-")) / "rm"
    if "tuilab" in names:
        subprocess.run([sys.executable, __file__, "--child", "prep", "--rm-dir", str(rm_dir), *sys.argv[1:]],
                       check=True, capture_output=True)
    for name in names:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
        if name.startswith("trl"):
            if not Path(args.trl_path, "trl", "experimental", "ppo").is_dir():
                print(f"{name}: skipped, no trl 1.12 at {args.trl_path} "
                      f"(pip install --no-deps --target {args.trl_path} trl==1.12.0)", file=sys.stderr)
                continue
            env["PYTHONPATH"] = os.pathsep.join([args.trl_path, str(ROOT), env.get("PYTHONPATH", "")])
        cmd = [sys.executable, __file__, "--child", name, "--rm-dir", str(rm_dir), *sys.argv[1:]]
        load = os.getloadavg()[0]
        print(f"running {name} (load average {load:.1f}) …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(f"{name} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(line[len("RESULT "):])
        results[name]["wall_s"] = time.perf_counter() - start
        results[name]["load_avg_at_start"] = load

    print(f"\nPPO update: {args.rollouts} rollouts × ≤{args.tokens} tokens, {args.epochs} epochs, "
          f"minibatch {args.minibatch}, LoRA r=8, {args.threads} threads, median of {args.updates} updates")
    print(f"{'config':<10} {'s/update':>9} {'CPU s/upd':>10} {'gen tok/s':>10} {'peak RSS':>10}  load avg")
    for name, r in results.items():
        print(f"{name:<10} {r['s_per_update']:>9.2f} {r['cpu_s_per_update']:>10.2f} {r['gen_tok_s']:>10.1f} "
              f"{r['peak_rss_mib'] / 1024:>6.2f} GiB  {r['load_avg_at_start']:.1f}")
    if "tuilab" in results:
        ours = results["tuilab"]
        for peer in ("trl-ppo", "trl-rloo"):
            if peer in results:
                r = results[peer]
                print(f"tuilab vs {peer}: {r['s_per_update'] / ours['s_per_update']:.2f}× faster per update "
                      f"({r['cpu_s_per_update'] / ours['cpu_s_per_update']:.2f}× in CPU time), "
                      f"{ours['gen_tok_s'] / r['gen_tok_s']:.2f}× generated tok/s, "
                      f"{ours['peak_rss_mib'] / r['peak_rss_mib']:.2f}× the peak memory")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
