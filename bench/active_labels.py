"""Active labeling: held-out reward-model accuracy against the number of labels, random queue vs disagreement queue.

    python bench/active_labels.py [--model tiny|NAME] [--step 16] [--labels 96] [--ensemble 3] [--pool 240]

A simulated labeler (a hidden rule, optionally noisy) labels pairs from one
fixed pool. Both queues start from the same `--step` random labels; every
`--step` labels the reward model (an ensemble of `--ensemble` LoRA members,
the lab's own `train_reward_model`, about 48 optimiser steps whatever the number
of labels) is retrained from scratch, its accuracy on
a held-out set is printed, and the next `--step` pairs are picked:

- random queue: uniformly from the unlabeled pool;
- disagreement queue: the unlabeled pairs the current ensemble disagrees on most
  (`labeling.disagreement.rank_by_disagreement`, the spread of the members'
  P(A ≻ B); P closest to ½ for one member).

The pool: answers are a few random words ending in a verdict word; the rule
prefers the positive verdict. Three verdict pairs (good/bad, great/awful,
fine/poor) appear in the pool 80 % / 10 % / 10 %, and equally often in the
held-out set: a labeling budget spent on the common kind teaches little, which is
what a queue that asks the most useful question first should find out by itself.

`--model tiny` (default) trains on a tiny random model (tests/tiny.py), seconds
per round; a model name (e.g. the default model) gives real figures at minutes
per round. Prints the load average: on a shared machine only the accuracies, not
the times, are comparable.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tuilab.config import RewardConfig  # noqa: E402
from tuilab.labeling.disagreement import rank_by_disagreement  # noqa: E402
from tuilab.records import PreferencePair  # noqa: E402

WORDS = ["sea", "wind", "poem", "rain", "shore", "answer", "question", "long", "short", "yes", "no"]
VERDICTS = [("good", "bad"), ("great", "awful"), ("fine", "poor")]
POOL_SHARES = [0.8, 0.1, 0.1]
STEPS = 48  # optimiser steps per retraining


def make_items(n: int, shares: list[float], rng: random.Random) -> list[tuple[list, str, str]]:
    """(messages, better, worse) triples; the kind of verdict drawn with `shares`."""
    out = []
    for i in range(n):
        kind = rng.choices(range(len(VERDICTS)), weights=shares)[0]
        stem = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        pos, neg = VERDICTS[kind]
        out.append(([{"role": "user", "content": f"Say something about item {i % 24}."}], f"{stem} {pos}",
                    f"{stem} {neg}"))
    return out


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


def accuracy(rm, items) -> float:
    scores = rm.score([m for m, _, _ in items] * 2, [c for _, c, _ in items] + [r for _, _, r in items]).mean
    n = len(items)
    return sum(scores[i] > scores[n + i] for i in range(n)) / n


def run(strategy: str, model_dir: Path, pool, test, args, tmp: Path) -> list[tuple[int, float]]:
    rng = random.Random(args.seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    labeled = order[: args.step]  # the same first labels for both queues
    unlabeled = [i for i in order if i not in set(labeled)]
    noise = random.Random(args.seed + 1)
    curve = []
    for rnd in range(args.labels // args.step):
        data = []
        for i in labeled:
            m, c, r = pool[i]
            data.append((m, r, c) if noise.random() < args.noise else (m, c, r))  # a noisy labeler flips
        rm = train(model_dir, data, tmp / f"{strategy}-{rnd}", args.ensemble, args.seed)
        curve.append((len(labeled), accuracy(rm, test)))
        print(f"  {strategy:<12} labels {len(labeled):>4}  held-out accuracy {curve[-1][1]:.3f}", flush=True)
        if len(labeled) >= args.labels or not unlabeled:
            break
        if strategy == "random":
            picked = unlabeled[: args.step]
        else:
            # Sides as shown are random: the ranking must not see which answer the rule prefers.
            shown = [(pool[i][0], *((pool[i][1], pool[i][2]) if rng.random() < 0.5 else (pool[i][2], pool[i][1])))
                     for i in unlabeled]
            ranks = rank_by_disagreement(rm, shown)
            best = sorted(range(len(unlabeled)), key=lambda k: (-ranks[k].score, k))[: args.step]
            picked = [unlabeled[k] for k in best]
        labeled += picked
        unlabeled = [i for i in unlabeled if i not in set(picked)]
    return curve


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, acc in curve if acc >= target), None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (a tiny random model) or a model folder/name in models/")
    ap.add_argument("--pool", type=int, default=240)
    ap.add_argument("--test", type=int, default=90)
    ap.add_argument("--step", type=int, default=16, help="labels between retrainings (M)")
    ap.add_argument("--labels", type=int, default=96, help="label budget")
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.0, help="share of the labeler's decisions flipped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.95, help="held-out accuracy to reach")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    rng = random.Random(args.seed + 100)
    pool = make_items(args.pool, POOL_SHARES, rng)
    test = make_items(args.test, [1 / 3] * 3, rng)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tuilab-active-") as tmp_s:
        tmp = Path(tmp_s)
        if args.model == "tiny":
            from tiny import save_tiny_model

            model_dir = save_tiny_model(tmp / "tiny-llama")
        else:
            from tuilab.modeling.registry import resolve_model

            model_dir = resolve_model(args.model, ROOT / "models")
        print(f"pool {args.pool} pairs (verdict kinds {POOL_SHARES}), held-out {args.test} (balanced), "
              f"retrain every {args.step} labels, ensemble {args.ensemble}, labeler noise {args.noise:g}, "
              f"model {Path(model_dir).name}")
        curves = {s: run(s, Path(model_dir), pool, test, args, tmp) for s in ("random", "disagreement")}
    print("labels  random  disagreement")
    for (n, a), (_, b) in zip(curves["random"], curves["disagreement"], strict=False):
        print(f"{n:>6}  {a:.3f}   {b:.3f}")
    for target in (args.target,):
        reach = {s: labels_to_reach(c, target) for s, c in curves.items()}
        text = ", ".join(f"{s} {n if n else f'not within {args.labels}'}" for s, n in reach.items())
        print(f"labels to reach {target:.2f} held-out accuracy: {text}"
              + (f" ({reach['random'] / reach['disagreement']:.2f}x fewer)" if all(reach.values()) else ""))
    final_random = curves["random"][-1][1]
    need_r = labels_to_reach(curves["random"], final_random)
    need_d = labels_to_reach(curves["disagreement"], final_random)
    if need_d:
        print(f"random reaches {final_random:.3f} with {need_r} labels; disagreement with {need_d} "
              f"({need_r / need_d:.2f}x fewer labels)")
    else:
        print(f"disagreement never reached random's final {final_random:.3f} within {args.labels} labels")
    print(f"{time.monotonic() - t0:.0f} s; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
