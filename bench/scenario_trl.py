"""`bench/scenario.py --peer trl`: TRL 1.12's PPO against the same reward model, same prompts, same settings.

Runs round 1 of the scenario with tuilab (unless `--lab` already holds one),
exports its reward model as a sequence classifier (`tuilab.modeling.export`:
adapter merged, head ÷ std as the score layer), and runs TRL's PPOTrainer in a
subprocess with trl 1.12 on its path (`pip install --no-deps --target DIR
trl==1.12.0 datasets dill multiprocess xxhash`: TRL's trainer takes a `datasets.Dataset`;
the lab never imports either). TRL's value model starts from that
reward model, as TRL does. TRL logs no response length: a wrapper around
`generate` counts each rollout's length up to its first EOS and its EOS rate.

Prints, for both: updates to the hack (first update whose trailing 5-update
means show length ≥ 1.5× the first five's and EOS rate < 0.5) and the wall
time to it, with the load average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scenario import EX, SCEN, fresh_lab, hacked_at, read_run, tuilab  # noqa: E402


def _train_prompts() -> list[str]:
    seen, out = set(), []
    for line in (SCEN / "prompts.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("split", "train") == "train" and row["prompt"] not in seen:
            seen.add(row["prompt"])
            out.append(row["prompt"])
    return out


def run_peer(args: argparse.Namespace) -> None:
    cfg = tomllib.loads((EX / "ppo.toml").read_text())
    lab = fresh_lab(args.lab)
    t = args.threads
    db = lab / "db" / "lab.db"
    ppo_run = rm_run = None
    if db.exists():
        import sqlite3

        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        row = con.execute("SELECT id, parents FROM runs WHERE kind = 'ppo' AND status = 'completed' "
                          "ORDER BY created_at LIMIT 1").fetchone()
        con.close()
        if row:
            ppo_run, rm_run = row[0], json.loads(row[1] or "[]")[0]
    if ppo_run is None:
        tuilab(lab, "data", "import", str(SCEN / "prompts.jsonl"), threads=t)
        tuilab(lab, "data", "import", str(SCEN / "preferences.jsonl"), threads=t)
        rm, _ = tuilab(lab, "train", "rm", "--quiet", "--config", str(EX / "rm.toml"), threads=t)
        rm_run = rm["run_id"]
        load = os.getloadavg()[0]
        ppo, _ = tuilab(lab, "train", "ppo", "--quiet", "--config", str(EX / "ppo.toml"),
                        "--set", f"reward_run={rm_run}", threads=t)
        ppo_run = ppo["run_id"]
    else:
        load = float("nan")
    rows = read_run(lab, ppo_run)
    ours = _summary([r["response/length_mean"] for r in rows], [r["response/eos_rate"] for r in rows],
                    [r["time/step_s"] for r in rows])

    from tuilab.modeling.export import export_reward_member

    out = Path(tempfile.mkdtemp(prefix="scenario-trl-")) / "rm-seqcls"
    export_reward_member(lab / "models" / "runs" / rm_run, "reward-0", out)
    if not Path(args.trl_target, "trl", "experimental", "ppo").is_dir():
        sys.exit(f"no trl 1.12 at {args.trl_target}: pip install --no-deps --target {args.trl_target} "
                 "trl==1.12.0 datasets dill multiprocess xxhash")
    env = {**os.environ, "OMP_NUM_THREADS": str(t), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(args.trl_target), str(ROOT)])}
    spec = {"rm": str(out), "model": str(lab / "models" / cfg.get("base_model", "smollm2-135m-instruct")),
            "prompts": _train_prompts(), "cfg": cfg, "threads": t}
    peer_load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(spec), env=env,
                          capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"TRL run failed:\n{proc.stderr[-3000:]}")
    peer = json.loads(line[len("RESULT "):])
    theirs = _summary(peer["length"], peer["eos"], peer["step_s"])
    print(f"\nsame reward model ({rm_run}), same {len(spec['prompts'])} prompts, settings of examples/length_hack/ppo.toml")
    print(f"{'':8} {'updates':>8} {'to hack':>8} {'s to hack':>10} {'s/update':>9} {'load':>5}")
    for name, s, ld in (("tuilab", ours, load), ("trl 1.12", theirs, peer_load)):
        print(f"{name:8} {s['updates']:8d} {s['hack'] or '–':>8} {s['secs_to_hack'] or float('nan'):10.0f} "
              f"{s['s_per_update']:9.1f} {ld:5.1f}")
    if ours["hack"] and theirs["hack"]:
        print(f"tuilab/TRL: updates {ours['hack'] / theirs['hack']:.2f}×, wall time "
              f"{ours['secs_to_hack'] / theirs['secs_to_hack']:.2f}×")
    print("TRL 5-update means: length", [round(x, 1) for x in _means(peer["length"])],
          "EOS", [round(x, 2) for x in _means(peer["eos"])], "score", [round(x, 2) for x in _means(peer["score"])])


def _means(xs: list[float], w: int = 5) -> list[float]:
    return [sum(xs[a : a + w]) / len(xs[a : a + w]) for a in range(0, len(xs), w)]


def _summary(lengths: list[float], eos: list[float], step_s: list[float]) -> dict:
    hack = hacked_at(lengths, eos)
    return {"updates": len(lengths), "hack": hack, "secs_to_hack": sum(step_s[:hack]) if hack else None,
            "s_per_update": sum(step_s) / max(len(step_s), 1)}


# ------------------------------------------------------------------ the TRL side (its own process)
def child() -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, TrainerCallback
    from transformers.generation.utils import GenerationMixin
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from tuilab.modeling.chat import prompt_ids
    from tuilab.modeling.loading import load_model

    spec = json.loads(sys.stdin.read())
    c = spec["cfg"]
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(int(c.get("seed", 0)))
    base = load_model(spec["model"])  # the same tokenizer fix (pad ≠ EOS) and fp32 weights as tuilab
    tok = base.tokenizer
    eos = tok.eos_token_id
    record = {"length": [], "eos": [], "score": [], "step_s": []}
    original = GenerationMixin.generate

    def counted(model, *a, **kw):
        out = original(model, *a, **kw)
        seqs = out.sequences if hasattr(out, "sequences") else out
        inputs = kw.get("input_ids", a[0] if a else None)
        resp = seqs[:, inputs.shape[1]:] if inputs is not None else seqs
        lengths, ended = [], []
        for row in resp.tolist():
            n = next((i for i, t in enumerate(row) if t == eos), None)
            ended.append(n is not None)
            lengths.append(n if n is not None else sum(t != tok.pad_token_id for t in row))
        record["length"].append(sum(lengths) / len(lengths))
        record["eos"].append(sum(ended) / len(ended))
        return out

    GenerationMixin.generate = counted
    marks = [time.perf_counter()]

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "objective/scores" in logs:
                record["score"].append(float(logs["objective/scores"]))

    reward = AutoModelForSequenceClassification.from_pretrained(spec["rm"], num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(spec["rm"], num_labels=1)
    for m in (reward, value):
        m.config.pad_token_id = tok.pad_token_id
    ids = [prompt_ids(tok, [{"role": "user", "content": p}]) for p in spec["prompts"]]
    bs, mb = int(c.get("batch_size", 8)), int(c.get("minibatch_size", 4))
    updates = int(c.get("total_updates", 15))
    lora = c.get("lora", {})
    args = PPOConfig(
        output_dir=tempfile.mkdtemp(prefix="scenario-trl-ppo-"), per_device_train_batch_size=bs,
        gradient_accumulation_steps=1, num_mini_batches=bs // mb, num_ppo_epochs=int(c.get("ppo_epochs", 2)),
        response_length=int(c.get("max_new_tokens", 48)), stop_token="eos", temperature=float(c.get("temperature", 0.9)),
        total_episodes=bs * updates, num_sample_generations=0, learning_rate=float(c.get("learning_rate", 2e-4)),
        # TRL steps its scheduler once per update (batch), as tuilab does: warm-up counts in updates too.
        lr_scheduler_type="linear" if c.get("lr_decay", True) else
        ("constant_with_warmup" if c.get("warmup_updates", 0) else "constant"),
        warmup_steps=int(c.get("warmup_updates", 0)),
        kl_coef=float(c.get("kl_coef", 0.05)), missing_eos_penalty=float(c.get("missing_eos_penalty", 1.0)) or None,
        local_rollout_forward_batch_size=bs, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True,
        bf16=False, fp16=False, gradient_checkpointing=False, dataloader_num_workers=0, seed=int(c.get("seed", 0)),
    )
    peft_config = LoraConfig(r=int(lora.get("r", 8)), lora_alpha=int(lora.get("alpha", 16)), lora_dropout=0.0,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = PPOTrainer(args=args, processing_class=tok, model=base.model, ref_model=None, reward_model=reward,
                         train_dataset=Dataset.from_dict({"input_ids": ids}), value_model=value,
                         peft_config=peft_config)
    trainer.add_callback(Clock())
    trainer.train()
    record["step_s"] = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    n = min(len(record["length"]), len(record["step_s"]))
    record = {k: v[:n] if k != "score" else v for k, v in record.items()}
    print("RESULT " + json.dumps(record), flush=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
