"""Active labeling: held-out reward-model accuracy against the number of labels, random queue vs disagreement queue.

    python bench/active_labels.py [--model tiny|NAME] [--seeds 0,1,2,3,4] [--step 8] [--labels 96]
                                  [--ensemble 3] [--pool 400] [--kinds 8] [--common 0.72] [--target 0.9]

A simulated labeler (a hidden rule, optionally noisy) labels pairs from one
fixed pool. Both queues start from the same `--step` random labels; every
`--step` labels the reward model (an ensemble of `--ensemble` LoRA members,
each trained on its own bootstrap resample with its own seed — the lab's own
`train_reward_model` — for the same number of optimiser steps whatever the
number of labels) is retrained from scratch, its accuracy on a held-out set is
printed, and the next `--step` pairs are picked:

- random queue: uniformly from the unlabeled pool;
- disagreement queue: the unlabeled pairs the current ensemble disagrees on most
  (`labeling.disagreement.rank_by_disagreement` and `most_disputed`: the spread
  of the members' P(A ≻ B), ties broken at random).

The task: each answer is a few random words ending in a verdict word, and the
two answers of a pair differ only in that word; the rule prefers the positive
word. There are `--kinds` verdict pairs (good/bad, great/awful, …), so the
held-out accuracy moves in fine steps as kinds are learned. The pool is what a
sampler hands a labeler: one kind makes up `--common` of it, the other kinds
share the rest equally; every further label of the common kind teaches little.
The held-out set has `--test-per-kind` pairs of every kind (the accuracy a
researcher wants: on every kind of answer). The bench also prints the accuracy
a held-out set drawn like the pool would give (the per-kind accuracies weighted
by the pool's shares), which is where a queue that skips the common kind
cannot gain.

The summary line per seed gives the labels each queue needed to reach
`--target` held-out accuracy (and stay at or above it for the rest of the
budget: a single lucky round does not count) and their ratio; the last lines
the median ratio over the seeds, and two checks: where each queue first
reached the target, and the labels to `--pool-target` on the pool-like
accuracy. A queue that never reaches a target counts as needing one round more
than the budget (the ratio is then a bound, marked ≥ or ≤).

`--model tiny` (default) trains on a tiny random model (tests/tiny.py), a few
seconds per round; a model name (e.g. the default model) gives real figures at
minutes per round. Prints the load average: on a shared machine only the
accuracies, not the times, are comparable.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tuilab.config import RewardConfig  # noqa: E402
from tuilab.labeling.disagreement import most_disputed, rank_by_disagreement  # noqa: E402
from tuilab.records import PreferencePair  # noqa: E402

WORDS = ["sea", "wind", "poem", "rain", "shore", "answer", "question", "long", "short", "yes", "no"]
VERDICTS = [("good", "bad"), ("great", "awful"), ("fine", "poor"), ("nice", "nasty"), ("bright", "dim"),
            ("right", "wrong"), ("calm", "angry"), ("happy", "sad"), ("clear", "vague"), ("safe", "risky")]
STEPS = 48  # optimiser steps per retraining (batch 8)


@dataclass(frozen=True)
class Item:
    messages: list
    better: str
    worse: str
    kind: int


def pool_shares(kinds: int, common: float) -> list[float]:
    """Kind 0 takes `common`; the other kinds share the rest equally."""
    if not 2 <= kinds <= len(VERDICTS):
        raise ValueError(f"--kinds must be 2…{len(VERDICTS)}, got {kinds}")
    if not 0.0 <= common < 1.0:
        raise ValueError(f"--common must be in [0, 1), got {common}")
    return [common] + [(1.0 - common) / (kinds - 1)] * (kinds - 1)


def make_items(kinds_drawn: list[int], rng: random.Random) -> list[Item]:
    """One pair per entry of `kinds_drawn`: the same random stem, ending in the kind's positive / negative word."""
    out = []
    for i, kind in enumerate(kinds_drawn):
        stem = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        pos, neg = VERDICTS[kind]
        out.append(Item([{"role": "user", "content": f"Say something about item {i % 24}."}], f"{stem} {pos}",
                        f"{stem} {neg}", kind))
    return out


def make_pool(n: int, shares: list[float], rng: random.Random) -> list[Item]:
    return make_items(rng.choices(range(len(shares)), weights=shares, k=n), rng)


def make_test(per_kind: int, kinds: int, rng: random.Random) -> list[Item]:
    return make_items([k for k in range(kinds) for _ in range(per_kind)], rng)


def train(model_dir: Path, labeled: list[tuple[list, str, str]], out: Path, ensemble: int, seed: int):
    from tuilab.modeling.reward_model import RewardModel
    from tuilab.training.reward import train_reward_model

    pairs = [PreferencePair(comparison_id=i + 1, prompt_id=i + 1, messages=m, chosen=c, rejected=r)
             for i, (m, c, r) in enumerate(labeled)]
    # The same number of optimiser steps whatever the label count (about `STEPS`): a queue is then judged
    # by what its labels teach, not by how many steps more labels buy.
    epochs = max(1, math.ceil(STEPS * 8 / len(pairs)))
    cfg = RewardConfig(learning_rate=3e-3, epochs=epochs, batch_size=8, checkpoint_every=0, warmup_ratio=0.0,
                       min_pairs=4, ensemble=ensemble, eval_fraction=0.0, seed=seed)
    train_reward_model(cfg, pairs, base=model_dir, output_dir=out, sink=lambda _e: None)
    return RewardModel.load(out)


def per_kind_accuracy(rm, items: list[Item], kinds: int) -> list[float]:
    scores = rm.score([it.messages for it in items] * 2, [it.better for it in items] + [it.worse for it in items]).mean
    n = len(items)
    right = [0] * kinds
    total = [0] * kinds
    for i, it in enumerate(items):
        total[it.kind] += 1
        right[it.kind] += scores[i] > scores[n + i]
    return [r / t if t else float("nan") for r, t in zip(right, total, strict=True)]


@dataclass
class Round:
    labels: int
    accuracy: float  # balanced held-out set
    pool_accuracy: float  # the per-kind accuracies weighted by the pool's shares
    picked_rare: int | None = None  # of the pairs picked after this round, how many not of the common kind


@dataclass
class Curve:
    strategy: str
    rounds: list[Round] = field(default_factory=list)


def run(strategy: str, model_dir: Path, pool: list[Item], test: list[Item], shares: list[float], args,
        seed: int, tmp: Path) -> Curve:
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    labeled = order[: args.step]  # the same first labels for both queues
    unlabeled = [i for i in order if i not in set(labeled)]
    noise = random.Random(seed + 1)
    flips = {i: noise.random() < args.noise for i in range(len(pool))}  # the same labeler mistakes in both queues
    pick_rng = random.Random(seed + 2)
    curve = Curve(strategy)
    for rnd in range(args.labels // args.step):
        data = [(pool[i].messages, pool[i].worse, pool[i].better) if flips[i]
                else (pool[i].messages, pool[i].better, pool[i].worse) for i in labeled]
        rm = train(model_dir, data, tmp / f"{strategy}-{seed}-{rnd}", args.ensemble, seed)
        kinds = per_kind_accuracy(rm, test, len(shares))
        point = Round(len(labeled), sum(kinds) / len(kinds), sum(s * a for s, a in zip(shares, kinds, strict=True)))
        curve.rounds.append(point)
        if len(labeled) >= args.labels or not unlabeled:
            print(f"  {strategy:<12} labels {point.labels:>4}  held-out {point.accuracy:.3f}  "
                  f"pool-like {point.pool_accuracy:.3f}", flush=True)
            counts = [sum(pool[i].kind == k for i in labeled) for k in range(len(shares))]
            print(f"  {strategy:<12} per kind: accuracy {' '.join(f'{a:.2f}' for a in kinds)}; labels {counts}",
                  flush=True)
            break
        if strategy == "random":
            picked = unlabeled[: args.step]
        else:
            # Sides as shown are random: the ranking must not see which answer the rule prefers.
            shown = [(pool[i].messages, *((pool[i].better, pool[i].worse) if pick_rng.random() < 0.5
                                          else (pool[i].worse, pool[i].better))) for i in unlabeled]
            best = most_disputed(rank_by_disagreement(rm, shown), args.step, pick_rng)
            picked = [unlabeled[k] for k in best]
        point.picked_rare = sum(pool[i].kind != 0 for i in picked)
        print(f"  {strategy:<12} labels {point.labels:>4}  held-out {point.accuracy:.3f}  "
              f"pool-like {point.pool_accuracy:.3f}  next {args.step}: {point.picked_rare} of the rare kinds",
              flush=True)
        labeled += picked
        unlabeled = [i for i in unlabeled if i not in set(picked)]
    return curve


def labels_to_reach(curve: Curve, target: float, *, stay: bool = True, pool_like: bool = False) -> int | None:
    """The first label count from which held-out accuracy stays ≥ `target` to the end of the budget
    (`stay=False`: where it first reaches it; `pool_like`: on the pool-like accuracy)."""
    need = None
    for r in curve.rounds:
        acc = r.pool_accuracy if pool_like else r.accuracy
        if acc < target:
            need = None if stay else need
        elif need is None:
            need = r.labels
    return need


def ratio(need_random: int | None, need_dis: int | None, budget: int, step: int) -> tuple[float, str]:
    """random / disagreement labels to the target, and '', '≥' or '≤' when a queue did not reach it.

    A queue that never reached it counts as needing `budget + step` labels (one round more than it had).
    """
    if need_random is None and need_dis is None:
        return math.nan, "neither"
    r = need_random if need_random is not None else budget + step
    d = need_dis if need_dis is not None else budget + step
    mark = "≥" if need_random is None else ("≤" if need_dis is None else "")
    return r / d, mark


def summary(results: dict[int, dict[str, Curve]], target: float, budget: int, step: int,
            pool_target: float | None = None) -> list[str]:
    """Per seed: labels to `target` (staying there) for each queue and their ratio; then the median ratio.

    Two more medians as checks of the headline: where each queue first reached the target (a lucky round
    counts), and labels to `pool_target` on the pool-like accuracy (where the common kind weighs its share).
    """
    lines = []
    ratios: dict[str, list[tuple[float, str]]] = {"stays": [], "first": [], "pool": []}
    neither: dict[str, list[int]] = {"stays": [], "first": [], "pool": []}
    for seed, curves in results.items():
        checks = [("stays", target, {"stay": True}), ("first", target, {"stay": False})]
        if pool_target is not None:
            checks.append(("pool", pool_target, {"stay": True, "pool_like": True}))
        parts = []
        for name, goal, how in checks:
            need = {s: labels_to_reach(c, goal, **how) for s, c in curves.items()}
            value, mark = ratio(need["random"], need["disagreement"], budget, step)
            shown = {s: str(n) if n is not None else f">{budget}" for s, n in need.items()}
            text = "neither reached it" if mark == "neither" else f"{mark}{value:.2f}x"
            label = {"stays": f"labels to {goal:.2f}", "first": "first reached",
                     "pool": f"pool-like to {goal:.2f}"}[name]
            parts.append(f"{label} — random {shown['random']}, disagreement {shown['disagreement']} ({text})")
            if mark == "neither":
                neither[name].append(seed)
            else:
                ratios[name].append((value, mark))
        finals = ", ".join(f"{s} {c.rounds[-1].accuracy:.3f}" for s, c in curves.items())
        lines.append(f"seed {seed}: {parts[0]}; final accuracy {finals}")
        lines.append(f"        {'; '.join(parts[1:])}")
    what = {"stays": f"labels to {target:.2f} held-out accuracy, staying there",
            "first": f"labels to first reach {target:.2f}",
            "pool": f"labels to {pool_target} pool-like accuracy"}
    for name, values in ratios.items():
        if not values:
            continue
        marks = {m for _, m in values}
        # A median of bounds that all point one way is a bound the same way; bounds both ways say nothing.
        bound = "" if marks <= {""} else ("≥" if "≤" not in marks else ("≤" if "≥" not in marks else "~"))
        line = (f"median ratio over {len(values)} seeds: {bound}{statistics.median(v for v, _ in values):.2f}x "
                f"(random / disagreement, {what[name]}; per seed {', '.join(f'{m}{v:.2f}' for v, m in values)})")
        if neither[name]:
            line += f"; neither queue reached it with seed {', '.join(map(str, neither[name]))}"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (a tiny random model) or a model folder/name in models/")
    ap.add_argument("--pool", type=int, default=400)
    ap.add_argument("--kinds", type=int, default=8, help="verdict pairs (kinds of answer)")
    ap.add_argument("--common", type=float, default=0.72, help="share of the pool taken by the common kind")
    ap.add_argument("--test-per-kind", type=int, default=24, help="held-out pairs of each kind")
    ap.add_argument("--step", type=int, default=8, help="labels between retrainings (M)")
    ap.add_argument("--labels", type=int, default=96, help="label budget")
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.0, help="share of the labeler's decisions flipped")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (pool, held-out set, training)")
    ap.add_argument("--target", type=float, default=0.9, help="held-out accuracy to reach")
    ap.add_argument("--pool-target", type=float, default=0.97, help="pool-like accuracy to reach (a check)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    shares = pool_shares(args.kinds, args.common)

    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    t0 = time.monotonic()
    results: dict[int, dict[str, Curve]] = {}
    with tempfile.TemporaryDirectory(prefix="tuilab-active-") as tmp_s:
        tmp = Path(tmp_s)
        if args.model == "tiny":
            from tiny import save_tiny_model

            model_dir = save_tiny_model(tmp / "tiny-llama")
        else:
            from tuilab.modeling.registry import resolve_model

            model_dir = resolve_model(args.model, ROOT / "models")
        print(f"pool {args.pool} pairs, {args.kinds} kinds (the common one {args.common:.0%}, the others "
              f"{shares[1]:.1%} each), held-out {args.test_per_kind} per kind, retrain every {args.step} labels "
              f"up to {args.labels}, ensemble {args.ensemble}, labeler noise {args.noise:g}, "
              f"model {Path(model_dir).name}, seeds {seeds}", flush=True)
        for seed in seeds:
            rng = random.Random(seed + 100)
            pool = make_pool(args.pool, shares, rng)
            test = make_test(args.test_per_kind, args.kinds, rng)
            print(f"seed {seed}: pool kinds {[sum(it.kind == k for it in pool) for k in range(args.kinds)]}",
                  flush=True)
            results[seed] = {s: run(s, Path(model_dir), pool, test, shares, args, seed, tmp)
                             for s in ("random", "disagreement")}
            curves = results[seed]
            print("  labels  random (pool-like)  disagreement (pool-like)")
            for a, b in zip(curves["random"].rounds, curves["disagreement"].rounds, strict=False):
                print(f"  {a.labels:>6}  {a.accuracy:.3f} ({a.pool_accuracy:.3f})     "
                      f"{b.accuracy:.3f} ({b.pool_accuracy:.3f})")
            print("\n".join(summary({seed: curves}, args.target, args.labels, args.step, args.pool_target)[:2]),
                  flush=True)
    print("summary")
    for line in summary(results, args.target, args.labels, args.step, args.pool_target):
        print(line)
    print(f"{time.monotonic() - t0:.0f} s; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
