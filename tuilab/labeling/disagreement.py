"""The "disagreement" candidate source: ask the question the reward model is least sure about first.

For each prompt the source samples `samples` answers from the base model (one
batched call), scores them with the reward model (or ensemble), and offers the
pair the members disagree on most — the spread of their P(A ≻ B) — or, with a
single member, the pair whose P is closest to ½ (`diagnostics.uncertainty`).
The reason travels in both candidates' `params["why"]`, stored with the
generations, so the screen can say it after the decision (never before: it
would hint at an answer).

`rank_by_disagreement` is the same ranking over ready-made pairs, and
`most_disputed` picks the top of it (exact ties at random, not by position);
the bench (`bench/active_labels.py`) uses both to pick which pool pairs to
label next.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

from tuilab.diagnostics.uncertainty import PairUncertainty, pair_uncertainty
from tuilab.labeling.candidates import Candidate, ModelCandidateSource, SourceSpec
from tuilab.modeling.host import ModelHost
from tuilab.records import Prompt


def member_rewards(rm: Any, messages: Sequence[Any], texts: Sequence[str]) -> list[list[float]]:
    """Each member's reward for each (prompt, answer): `[k][i]`."""
    return rm.score(list(messages), list(texts)).members


def rank_by_disagreement(rm: Any, pairs: Sequence[tuple[Any, str, str]]) -> list[PairUncertainty]:
    """The uncertainty of each (messages, a, b) pair under `rm` (one scoring pass over all answers)."""
    if not pairs:
        return []
    messages = [m for m, _, _ in pairs] * 2
    texts = [a for _, a, _ in pairs] + [b for _, _, b in pairs]
    members = member_rewards(rm, messages, texts)
    n = len(pairs)
    return [pair_uncertainty([r[i] for r in members], [r[n + i] for r in members]) for i in range(n)]


def most_disputed(ranks: Sequence[PairUncertainty], k: int, rng: random.Random | None = None) -> list[int]:
    """Indices of the `k` most disputed pairs, most first; exact ties (e.g. members that all saturate at
    P = 1, or identical answers at spread 0) in random order rather than by position in the pool."""
    rng = rng or random.Random(0)
    keys = [rng.random() for _ in ranks]
    return sorted(range(len(ranks)), key=lambda i: (-ranks[i].score, keys[i]))[: max(k, 0)]


class DisagreementSource:
    """Candidates from the base model, the pair per prompt that the reward model is least sure about."""

    def __init__(self, host: ModelHost, reward_dir: str | Path, spec: SourceSpec | None = None, *,
                 samples: int = 4) -> None:
        if samples < 2:
            raise ValueError(f"the disagreement source needs at least 2 samples per prompt, got {samples}")
        self.inner = ModelCandidateSource(host, spec)
        self.reward_dir = Path(reward_dir)
        if not self.reward_dir.is_absolute():
            self.reward_dir = host.models_dir / self.reward_dir
        if not (self.reward_dir / "reward.json").exists():
            raise FileNotFoundError(f"{self.reward_dir}: not a reward model folder (no reward.json)")
        self.samples = samples
        self.label = f"{host.name}: the most disputed of {samples} samples by {self.reward_dir.name}"
        self.progress = None
        self.stop_requested = None
        self._rm: Any = None
        self._ties = random.Random(self.inner.spec.seed)  # equally disputed pairs of a prompt: drawn, seeded

    def _reward_model(self) -> Any:
        if self._rm is None:
            from tuilab.modeling.reward_model import RewardModel

            if self.progress:
                self.progress(f"loading reward model {self.reward_dir.name}")
            self._rm = RewardModel.load(self.reward_dir)  # its own base: the sampler's stays adapter-free
        return self._rm

    def pair(self, prompt: Prompt) -> tuple[Candidate, Candidate]:
        return self.pairs([prompt])[0]

    def pairs(self, prompts: list[Prompt]) -> list[tuple[Candidate, Candidate]]:
        self.inner.progress, self.inner.stop_requested = self.progress, self.stop_requested
        spec = self.inner.spec
        # `samples` answers per prompt, all in one batched call at side A's temperature.
        repeated = [p for p in prompts for _ in range(self.samples)]
        with self.inner.host.lock:
            rows = self.inner._generate(spec.adapter_a if spec.mode == "ab" else "",
                                        [p.messages for p in repeated], spec.temperature_a, spec.seed)
        cands = [self.inner._candidate(r, "A", "", spec.temperature_a, spec.seed) for r in rows]
        options: list[tuple[int, int, int]] = []  # (prompt index, i, j)
        for pi in range(len(prompts)):
            base = pi * self.samples
            options += [(pi, base + i, base + j) for i, j in combinations(range(self.samples), 2)]
        if self.progress:
            self.progress(f"scoring {len(cands)} answers with the reward model")
        ranks = rank_by_disagreement(self._reward_model(),
                                     [(prompts[pi].messages, cands[i].text, cands[j].text) for pi, i, j in options])
        out = []
        for pi in range(len(prompts)):
            mine = [k for k, (q, _, _) in enumerate(options) if q == pi]
            best = mine[most_disputed([ranks[k] for k in mine], 1, self._ties)[0]]
            _, i, j = options[best]
            why = ranks[best].why()
            a = replace(cands[i], params={**cands[i].params, "side": "A", "why": why})
            b = replace(cands[j], params={**cands[j].params, "side": "B", "why": why})
            out.append((a, b))
        return out

    def close(self) -> None:
        self._rm = None
