"""Reward-model training, the one entry point: preference pairs in, a reward-model folder out.

`train_reward_model` checks the config and the pairs (refusing, with the
reasons, when too few are usable), encodes them exactly as PPO will score them
(`chat.scored_ids`: chat template + response + EOS, the reward read at that last
token), holds out an eval set, runs `RewardTrainer` for each ensemble member and
writes the folder `RewardModel.load` reads. The loop knows nothing of SQLite or
Textual: it reports through `sink(event)` and checks `control.check()` every step.
Under a launcher it runs on every rank (`training.distributed`): each scores its
share of every batch, and only the main process writes the folder.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuilab.config import RewardConfig
from tuilab.diagnostics.calibration import length_bias_message
from tuilab.modeling.export import portable_base
from tuilab.modeling.loading import LoadedModel, load_model
from tuilab.modeling.reward_model import write_manifest
from tuilab.records import PreferencePair
from tuilab.training.distributed import current
from tuilab.training.events import Metrics, RunControl, RunWarning, Sink
from tuilab.training.metrics import EncodedPair, evaluate_reward_model
from tuilab.training.packing import encode_pairs
from tuilab.training.reward_trainer import RewardTrainer

# Why pairs were left out, in words (keys are counted by the job and by this module).
LEFT_OUT_WORDS = {
    "ties": "ties (ties = \"skip\"; set ties = \"half\" to train on them)",
    "both_bad": "marked both bad",
    "skip": "skipped",
    "too_long": "longer than max_length tokens",
    "identical": "with identical chosen and rejected text",
}


class NotEnoughPairs(ValueError):
    """Too few usable pairs to train on; the message says how many, how many are needed, and why."""

    def __init__(self, have: int, need: int, left_out: dict[str, int] | None = None) -> None:
        self.have, self.need, self.left_out = have, need, dict(left_out or {})
        reasons = [f"{n} {LEFT_OUT_WORDS.get(k, k)}" for k, n in self.left_out.items() if n]
        why = f" Left out: {', '.join(reasons)}." if reasons else ""
        super().__init__(
            f"Not enough preference pairs to train a reward model: {have} usable, {need} needed "
            f"(min_pairs).{why} Label more pairs, or lower min_pairs."
        )


def usable_pairs(cfg: RewardConfig, pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], Counter]:
    """Pairs this config trains on, and a count of the rest by reason."""
    if cfg.ties not in ("skip", "half"):
        raise ValueError(f'ties must be "skip" or "half", got {cfg.ties!r}')
    kept: list[PreferencePair] = []
    left_out: Counter = Counter()
    for p in pairs:
        if p.label != 1.0 and cfg.ties == "skip":
            left_out["ties"] += 1
        elif p.chosen == p.rejected:
            left_out["identical"] += 1
        else:
            kept.append(p)
    return kept, left_out


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(1 << 48)


def split_eval(pairs: Sequence[EncodedPair], eval_fraction: float) -> tuple[list[EncodedPair], list[EncodedPair]]:
    """(train, eval). Pairs on held-out ("test") prompts are the eval set; when there are none,
    `eval_fraction` of the pairs is held out, whole prompts at a time, chosen by a hash (deterministic)."""
    test = [p for p in pairs if p.split == "test"]
    if test:
        return [p for p in pairs if p.split != "test"], test
    if eval_fraction <= 0 or len(pairs) < 2:
        return list(pairs), []
    want = max(1, round(eval_fraction * len(pairs)))
    by_prompt: dict[int, list[EncodedPair]] = {}
    for p in pairs:
        by_prompt.setdefault(p.prompt_id, []).append(p)
    held: set[int] = set()
    if len(by_prompt) > 1:
        count = 0
        for pid in sorted(by_prompt, key=lambda i: _unit_hash(f"prompt:{i}")):
            if count >= want or count + len(by_prompt[pid]) >= len(pairs):
                break
            held.add(id(by_prompt[pid]))
            count += len(by_prompt[pid])
        if count >= 1:
            eval_set = [p for grp in by_prompt.values() if id(grp) in held for p in grp]
            train = [p for grp in by_prompt.values() if id(grp) not in held for p in grp]
            return train, eval_set
    order = sorted(range(len(pairs)), key=lambda i: _unit_hash(f"pair:{pairs[i].comparison_id}:{i}"))
    eval_idx = set(order[:want])
    return [p for i, p in enumerate(pairs) if i not in eval_idx], [p for i, p in enumerate(pairs) if i in eval_idx]


def train_reward_model(
    cfg: RewardConfig,
    pairs: Sequence[PreferencePair],
    *,
    base: LoadedModel | str | Path,
    output_dir: str | Path,
    sink: Sink,
    control: RunControl | None = None,
    left_out: dict[str, int] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train `cfg.ensemble` reward members on `pairs`; save them under `output_dir`; return final metrics.

    `left_out` counts pairs the caller already dropped (ties, both-bad, skips)
    so a refusal can say why there are too few. Raises `NotEnoughPairs`
    before loading anything when fewer than `cfg.min_pairs` are usable,
    `TrainingDiverged` on a NaN/inf loss, `CancelledRun` when cancelled (after
    writing a loadable checkpoint).
    """
    control = control or RunControl()
    check_config(cfg)
    kept, dropped = usable_pairs(cfg, pairs)
    reasons: Counter = Counter(left_out or {})
    reasons.update(dropped)
    if len(kept) < cfg.min_pairs:
        raise NotEnoughPairs(len(kept), cfg.min_pairs, reasons)
    dist = current()
    if device is None and dist.enabled and dist.device.type == "cuda":
        device = str(dist.device)  # this rank's GPU
    if not isinstance(base, LoadedModel):
        base = load_model(base, four_bit=cfg.four_bit, device=device)
    if cfg.four_bit and not base.four_bit:
        raise ValueError("four_bit = true but the given base model was loaded in full precision")
    output_dir = Path(output_dir)
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    encoded, too_long = encode_pairs(base.tokenizer, kept, cfg.max_length)
    if too_long:
        reasons["too_long"] += too_long
        sink(
            RunWarning(
                step=0,
                code="too_long",
                message=f"{too_long} pairs were longer than max_length = {cfg.max_length} tokens and were left out.",
            )
        )
    if len(encoded) < cfg.min_pairs:
        raise NotEnoughPairs(len(encoded), cfg.min_pairs, reasons)
    train, eval_set = split_eval(encoded, cfg.eval_fraction)
    if not train:
        raise NotEnoughPairs(0, cfg.min_pairs, reasons | {"held out for evaluation": len(eval_set)})

    trainer = RewardTrainer(cfg, base, output_dir, sink, control, dist)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    trainer.state.total_steps = steps_per_epoch * cfg.epochs * cfg.ensemble
    trainer.state.last_flush = time.monotonic()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        trainer.build()
    trainer.check_sharing(train[: cfg.batch_size], longest=max(p.packed_length for p in train))
    for k in range(cfg.ensemble):
        trainer.train_member(k, train, eval_set)

    final: dict[str, Any] = {}
    if eval_set:
        ev, per_member = evaluate_reward_model(trainer.rm(trainer.members), eval_set, dist=dist)
        values = ev.as_metrics()
        if cfg.ensemble > 1:
            for name, m in zip(trainer.members, per_member, strict=True):
                values.update(m.as_metrics(prefix=f"eval/{name}/"))
        sink(Metrics(step=trainer.state.step, values=values, total_steps=trainer.state.total_steps))
        final.update(values)
        message = length_bias_message(ev.length_corr, 2 * ev.pairs)
        if message:
            sink(RunWarning(step=trainer.state.step, code="length_bias", message=message))
    if dist.is_main:
        write_manifest(
            output_dir,
            base_model=portable_base(base.path, output_dir),
            hidden_size=trainer.hidden,
            members=trainer.members,
            norm=trainer.norm,
            extra=trainer.manifest_extra(step=trainer.state.step, eval=final),
        )
    st = trainer.state
    final.update(
        {
            "train/loss": st.last_values.get("train/loss"),
            "train/accuracy": st.last_values.get("train/accuracy"),
            "train/pairs": len(train),
            "eval/pairs": len(eval_set),
            "train/pairs_per_s": st.pairs_seen / st.train_seconds if st.train_seconds else None,
            "steps": st.step,
            "ensemble": cfg.ensemble,
            "seconds": round(time.monotonic() - started, 2),
            "left_out": {k: v for k, v in reasons.items() if v},
            "output_dir": str(output_dir),
        }
    )
    return final



def check_config(cfg: RewardConfig) -> None:
    problems = []
    if cfg.epochs < 1:
        problems.append(f"epochs must be ≥ 1 (got {cfg.epochs})")
    if cfg.batch_size < 1:
        problems.append(f"batch_size must be ≥ 1 (got {cfg.batch_size})")
    if cfg.ensemble < 1:
        problems.append(f"ensemble must be ≥ 1 (got {cfg.ensemble})")
    if not cfg.learning_rate > 0:
        problems.append(f"learning_rate must be > 0 (got {cfg.learning_rate})")
    if not 0 <= cfg.eval_fraction < 1:
        problems.append(f"eval_fraction must be in [0, 1) (got {cfg.eval_fraction})")
    if cfg.max_length < 2:
        problems.append(f"max_length must be ≥ 2 (got {cfg.max_length})")
    if problems:
        raise ValueError("reward config: " + "; ".join(problems))
