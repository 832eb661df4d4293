"""Annotators that decide pairs without a person: a rule, the gold scorer, a judge model, and noisy copies.

Every annotator sees a pair exactly as a person would (prompt, left, right,
sides already randomised) and answers "left", "right" or "tie"; its `name` is
stored in the comparison's `annotator` column, so its agreement with people
(and with other annotators) can be measured before its labels are trusted.

Specs, as `tuilab label auto --annotator` takes them:
- `rule:MODULE:FUNCTION` — a scorer `f(text)` or `f(prompt, response)`; the
  higher-scored answer wins, equal scores tie;
- `compare:MODULE:FUNCTION` — `f(a, b)` or `f(prompt, a, b)` returning
  "left"/"right"/"tie" (or "a"/"b"), or a number (> 0: the first is better);
- `gold` or `gold:MODULE:FUNCTION` — the gold scorer as a rule (default
  `tuilab.diagnostics.gold:concise_correct`);
- `judge` or `judge:MODEL` — a causal LM asked a pairwise question in both
  orders (position bias cancels): the answer preferred in both orders wins,
  a tie when the orders disagree.

`Noisy` flips a share of strict decisions at random (AlpacaFarm's simulated
annotators: overoptimization appears only with label noise and annotator
variety). Only the judge imports torch, inside its methods.
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tuilab.diagnostics.gold import GoldScorerError, load_gold_scorer

GOLD_DEFAULT = "tuilab.diagnostics.gold:concise_correct"
KINDS = ("rule", "compare", "gold", "judge")


class AnnotatorError(ValueError):
    """An annotator spec that cannot be used; the message names the spec and what was expected."""


@dataclass(frozen=True)
class Shown:
    """A pair as shown: the prompt (flat text and messages) and the two answers in screen order."""

    prompt: str
    messages: list
    left: str
    right: str


class Annotator(Protocol):
    name: str

    def decide(self, pairs: Sequence[Shown]) -> list[str]:
        """One of "left", "right", "tie" per pair, in order."""
        ...


class Rule:
    """The higher-scored answer wins; equal scores are a tie."""

    def __init__(self, spec: str, *, kind: str = "rule") -> None:
        try:
            self.score = load_gold_scorer(spec)
        except GoldScorerError as exc:
            raise AnnotatorError(str(exc).replace("gold scorer", f"{kind} annotator", 1)) from None
        self.name = f"{kind}:{spec}"

    def decide(self, pairs: Sequence[Shown]) -> list[str]:
        out = []
        for p in pairs:
            a, b = self.score(p.prompt, p.left), self.score(p.prompt, p.right)
            out.append("left" if a > b else "right" if b > a else "tie")
        return out


_WORDS = {"left": "left", "a": "left", "first": "left", "right": "right", "b": "right", "second": "right",
          "tie": "tie", "equal": "tie", "both_bad": "tie"}


class Compare:
    """A function that compares two answers directly."""

    def __init__(self, spec: str) -> None:
        self.fn = _resolve(spec, "compare")
        params = [p for p in inspect.signature(self.fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        if len(params) not in (2, 3):
            raise AnnotatorError(f"compare annotator {spec!r}: takes (a, b) or (prompt, a, b), "
                                 f"not {len(params)} arguments")
        self.with_prompt = len(params) == 3
        self.name = f"compare:{spec}"

    def decide(self, pairs: Sequence[Shown]) -> list[str]:
        out = []
        for p in pairs:
            got = self.fn(p.prompt, p.left, p.right) if self.with_prompt else self.fn(p.left, p.right)
            if isinstance(got, str):
                word = _WORDS.get(got.strip().lower())
                if word is None:
                    raise AnnotatorError(f"{self.name} returned {got!r}; expected left/right/tie or a number")
                out.append(word)
            else:
                v = float(got)
                out.append("left" if v > 0 else "right" if v < 0 else "tie")
        return out


def _resolve(spec: str, kind: str) -> Callable:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AnnotatorError(f"{kind} annotator {spec!r}: expected 'module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise AnnotatorError(f"{kind} annotator {spec!r}: cannot import {module_name!r} ({exc})") from None
    except AttributeError:
        raise AnnotatorError(f"{kind} annotator {spec!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(target):
        raise AnnotatorError(f"{kind} annotator {spec!r}: {attr} is not a function")
    return target


class Noisy:
    """Another annotator's decisions with a share `p` of strict ones flipped at random (ties stay)."""

    def __init__(self, inner: Annotator, p: float, *, seed: int | None = None, name: str | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise AnnotatorError(f"noise must be between 0 and 1, got {p}")
        self.inner, self.p = inner, p
        self.rng = random.Random(seed)
        self.name = name or (f"{inner.name}~noise{p:g}" if p else inner.name)

    def decide(self, pairs: Sequence[Shown]) -> list[str]:
        flip = {"left": "right", "right": "left"}
        return [flip[d] if d in flip and self.rng.random() < self.p else d for d in self.inner.decide(pairs)]


JUDGE_PROMPT = (
    "Which response answers the request better?\n\n"
    "Request:\n{prompt}\n\nResponse A:\n{a}\n\nResponse B:\n{b}\n\n"
    "Reply with the single letter A or B."
)


class Judge:
    """A causal LM as a pairwise judge: P(A) vs P(B) for its first answer token, asked in both orders.

    Asking twice with the answers swapped cancels position bias (a small model
    often just prefers "A"): the left answer wins only when it is preferred
    in both orders, the right likewise, and a split verdict is a tie.
    """

    def __init__(self, host: Any, *, batch_size: int = 8, template: str = JUDGE_PROMPT) -> None:
        self.host = host
        self.batch_size = batch_size
        self.template = template
        self.name = f"judge:{host.name}"

    def _letter_ids(self, tokenizer: Any) -> tuple[int, int]:
        ids = []
        for letter in ("A", "B"):
            enc = tokenizer.encode(letter, add_special_tokens=False)
            if len(enc) != 1:
                raise AnnotatorError(f"{self.name}: the tokenizer splits {letter!r} into {len(enc)} tokens")
            ids.append(enc[0])
        return ids[0], ids[1]

    def prefer_first(self, pairs: Sequence[tuple[str, str, str]]) -> list[float]:
        """P(first shown answer is better) for (prompt, first, second) triples, from the next-token logits."""
        import torch

        from tuilab.modeling.chat import prompt_ids

        with self.host.lock, self.host.adapter("") as lm, self.host.cpu_threads():
            tok, model = lm.tokenizer, lm.model
            id_a, id_b = self._letter_ids(tok)
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            device = next(model.parameters()).device
            out: list[float] = []
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start:start + self.batch_size]
                seqs = [prompt_ids(tok, [{"role": "user", "content": self.template.format(prompt=p, a=a, b=b)}])
                        for p, a, b in chunk]
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), pad, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, s in enumerate(seqs):  # left padding: the last position is every row's next token
                    ids[i, width - len(s):] = torch.tensor(s)
                    mask[i, width - len(s):] = 1
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                with torch.inference_mode():
                    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                   position_ids=positions.to(device)).logits[:, -1, :].float()
                two = torch.stack([logits[:, id_a], logits[:, id_b]], dim=-1).softmax(-1)
                out.extend(float(x) for x in two[:, 0])
            return out

    def decide(self, pairs: Sequence[Shown]) -> list[str]:
        asked = [(p.prompt, p.left, p.right) for p in pairs] + [(p.prompt, p.right, p.left) for p in pairs]
        probs = self.prefer_first(asked)
        n = len(pairs)
        out = []
        for left_first, right_first in zip(probs[:n], probs[n:], strict=True):
            left_wins_1, left_wins_2 = left_first > 0.5, right_first < 0.5
            if left_wins_1 and left_wins_2:
                out.append("left")
            elif not left_wins_1 and not left_wins_2:
                out.append("right")
            else:
                out.append("tie")
        return out


def parse_annotator(spec: str, *, models_dir: Path | None = None, default_model: str = "") -> Annotator:
    """Build an annotator from its spec (see the module docstring); AnnotatorError names what is wrong."""
    kind, _, rest = (spec or "").strip().partition(":")
    if kind == "rule":
        if not rest:
            raise AnnotatorError("rule annotator: expected 'rule:module:function'")
        return Rule(rest)
    if kind == "compare":
        return Compare(rest)
    if kind == "gold":
        return Rule(rest or GOLD_DEFAULT, kind="gold")
    if kind == "judge":
        from tuilab.modeling.host import ModelHost

        if models_dir is None:
            raise AnnotatorError("judge annotator: no models folder given")
        return Judge(ModelHost(Path(models_dir), rest or default_model))
    raise AnnotatorError(f"annotator {spec!r}: expected one of {', '.join(k + ':…' for k in KINDS)} "
                         "(e.g. rule:mymodule:score, gold, judge)")


def simulated(base: Annotator, noises: Sequence[float], *, seed: int = 0) -> list[Annotator]:
    """Several simulated annotators from one: one per noise level, each with its own random stream and name."""
    if len(noises) == 1:
        return [Noisy(base, noises[0], seed=seed)]
    return [Noisy(base, p, seed=seed + i, name=f"{base.name}~sim{i + 1}(noise {p:g})") for i, p in enumerate(noises)]
