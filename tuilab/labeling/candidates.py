"""Where the two responses of a labeling pair come from.

A `CandidateSource` turns a prompt into two candidates. It is called from the
generation worker thread only, never from the UI thread, so it may be slow.
`ModelCandidateSource` samples them from the base model and its adapters through a
shared `modeling.host.ModelHost` (one model, one lock, PEFT adapters switched on
it); this module imports no torch at import time. Tests, snapshots and the latency
bench use a deterministic fake (`tests/labeling/fake_source.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tuilab.modeling.host import ModelHost, Progress
from tuilab.records import Prompt

MODES = ("samples", "ab", "disagreement")


class GenerationStopped(Exception):
    """Raised inside a model call when its feeder is stopping; never shown as an error."""


@dataclass(frozen=True)
class Candidate:
    """One response as the worker produced it (not yet stored)."""

    text: str
    model: str
    adapter: str = ""
    n_tokens: int | None = None
    finished: bool | None = None
    params: dict = field(default_factory=dict)


@runtime_checkable
class CandidateSource(Protocol):
    """Produces (A, B) for a prompt. Called in a worker thread; may block for seconds.

    `label` describes the source without saying which side is which (shown while
    labeling). Sources may also define `pairs(prompts)` to batch several prompts in
    one model call, `progress` (a callable the feeder sets to report phases such as
    "loading model"), and `close()` to free memory.
    """

    label: str

    def pair(self, prompt: Prompt) -> tuple[Candidate, Candidate]: ...


# Optional attributes a source may have, set by the feeder: `progress` (phases and
# decoding steps) and `stop_requested` (a callable; when it returns True the source
# may raise `GenerationStopped` to end a long call early).


def source_pairs(source: CandidateSource, prompts: list[Prompt]) -> list[tuple[Candidate, Candidate]]:
    """Batched when the source can batch, else one prompt at a time."""
    batched = getattr(source, "pairs", None)
    if callable(batched):
        out = list(batched(prompts))
        if len(out) != len(prompts):
            raise RuntimeError(f"{source.label}: asked for {len(prompts)} pairs, got {len(out)}")
        return out
    return [source.pair(p) for p in prompts]


# ------------------------------------------------------------------ settings


@dataclass
class SourceSpec:
    """What the settings panel edits: how the two sides of a pair are produced.

    `mode` "samples": two samples of the base model (temperatures may differ; a fixed
    `seed` makes a session reproducible). `mode` "ab": side A is the base model (or
    `adapter_a`), side B is `adapter_b`, a PEFT policy adapter found under models/.
    `mode` "disagreement": `samples` answers per prompt, the pair the reward model in
    `reward_run` (a folder with reward.json, under models/ or absolute) is least sure
    about (`labeling.disagreement`).
    """

    mode: str = "samples"
    adapter_a: str = ""
    adapter_b: str = ""
    temperature_a: float = 0.8
    temperature_b: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int | None = None
    reward_run: str = ""
    samples: int = 4

    def check(self) -> None:
        """Raise ValueError with a message naming the bad field."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "ab" and not self.adapter_b and not self.adapter_a:
            raise ValueError("model A vs model B needs a policy adapter for B (none chosen)")
        if self.mode == "ab" and self.adapter_a == self.adapter_b:
            raise ValueError("A and B are the same model; choose a different adapter for B")
        if self.mode == "disagreement" and not self.reward_run:
            raise ValueError("the disagreement queue needs a reward model (none chosen; train one on F3)")
        if not 2 <= self.samples <= 16:
            raise ValueError(f"samples per prompt must be between 2 and 16, got {self.samples}")
        for name in ("temperature_a", "temperature_b"):
            t = getattr(self, name)
            if not 0.0 <= t <= 5.0:
                raise ValueError(f"{name} must be between 0 and 5, got {t}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be between 1 and 4096, got {self.max_new_tokens}")

    def describe(self, model: str) -> str:
        """A side-neutral description for the status line."""
        if self.mode == "disagreement":
            return f"{model}: the most disputed of {self.samples} samples by {_short(self.reward_run)}"
        if self.mode == "ab":
            a = _short(self.adapter_a) if self.adapter_a else model
            b = _short(self.adapter_b) if self.adapter_b else model
            return f"{a} vs {b}"
        if self.temperature_a == self.temperature_b:
            return f"{model}: two samples at T={self.temperature_a:g}"
        return f"{model}: samples at T={self.temperature_a:g} and T={self.temperature_b:g}"


def _short(adapter: str) -> str:
    p = Path(adapter)
    return "/".join(p.parts[-2:]) if len(p.parts) > 1 else adapter


class ModelCandidateSource:
    """Candidates sampled from the base model and its adapters, in the calling (worker) thread."""

    def __init__(self, host: ModelHost, spec: SourceSpec | None = None) -> None:
        self.host = host
        self.spec = spec or SourceSpec()
        self.spec.check()
        self.label = self.spec.describe(host.name)
        self.progress: Progress | None = None
        self.stop_requested: Callable[[], bool] | None = None  # set by the feeder
        # preview(a_text, b_text): the first pair's answers so far, while they are generated (set by the feeder).
        self.preview: Callable[[str, str], Any] | None = None
        self._calls = 0

    def pair(self, prompt: Prompt) -> tuple[Candidate, Candidate]:
        return self.pairs([prompt])[0]

    def pairs(self, prompts: list[Prompt]) -> list[tuple[Candidate, Candidate]]:
        spec = self.spec
        messages = [p.messages for p in prompts]
        seed = None if spec.seed is None else spec.seed + self._calls
        self._calls += 1
        with self.host.lock:
            same = spec.mode == "samples" and spec.temperature_a == spec.temperature_b
            stream = _Stream(self.host, self.preview)
            if same:
                # Both samples of every pair in one batched call; rows 0 and n are the first pair's A and B.
                rows = self._generate("", messages + messages, spec.temperature_a, seed,
                                      stream.watch({0: "a", len(prompts): "b"}))
                side_a, side_b = rows[: len(prompts)], rows[len(prompts):]
            else:
                side_a = self._generate(spec.adapter_a if spec.mode == "ab" else "", messages,
                                        spec.temperature_a, seed, stream.watch({0: "a"}))
                side_b = self._generate(spec.adapter_b if spec.mode == "ab" else "", messages,
                                        spec.temperature_b, None if seed is None else seed + 10_000,
                                        stream.watch({0: "b"}))
            if self.preview is not None:
                stream.flush()  # the whole first pair, before it is stored and queued
        a_adapter = spec.adapter_a if spec.mode == "ab" else ""
        b_adapter = spec.adapter_b if spec.mode == "ab" else ""
        return [
            (self._candidate(ra, "A", a_adapter, spec.temperature_a, seed),
             self._candidate(rb, "B", b_adapter, spec.temperature_b, seed))
            for ra, rb in zip(side_a, side_b, strict=True)
        ]

    def _generate(self, adapter: str, messages: list, temperature: float, seed: int | None,
                  on_step: Callable[[list[int], list[int]], Any] | None = None) -> list:
        from tuilab.config import SamplingConfig
        from tuilab.modeling.generation import generate

        cfg = SamplingConfig(
            max_new_tokens=self.spec.max_new_tokens,
            temperature=temperature,
            top_p=self.spec.top_p,
            seed=seed,
            batch_size=max(len(messages), 1),
        )
        with self.host.adapter(adapter, self.progress) as lm:
            what = f"generating {len(messages)} × ≤{cfg.max_new_tokens} tokens" + (
                f" with {_short(adapter)}" if adapter else "")
            if self.progress:
                self.progress(what)
            handle = self._count_steps(lm.model, what, cfg.max_new_tokens)
            try:
                with self.host.cpu_threads():
                    return generate(lm.model, lm.tokenizer, messages, cfg, on_step=on_step)
            finally:
                if handle is not None:
                    handle.remove()

    def _count_steps(self, model: Any, what: str, total: int) -> Any:
        """A hook on each forward (one per token): reports progress ~3 times a second, and
        stops decoding at the next token once `stop_requested()` (quitting or a new source
        does not wait for a long generation to finish)."""
        if not hasattr(model, "register_forward_hook"):
            return None
        progress, stop = self.progress, self.stop_requested
        state = {"step": 0, "last": 0.0}

        def hook(_module: Any, _args: Any, _output: Any) -> None:
            if stop is not None and stop():
                raise GenerationStopped("candidate generation stopped")
            state["step"] += 1
            now = time.monotonic()
            if progress is not None and now - state["last"] >= 0.3:
                state["last"] = now
                progress(what, min(state["step"], total), total)

        return model.register_forward_hook(hook)

    def _candidate(self, result: Any, side: str, adapter: str, temperature: float, seed: int | None) -> Candidate:
        params = {
            "side": side,
            "temperature": temperature,
            "top_p": self.spec.top_p,
            "max_new_tokens": self.spec.max_new_tokens,
        }
        if seed is not None:
            params["seed"] = seed
        return Candidate(
            text=result.text,
            model=self.host.name,
            adapter=adapter,
            n_tokens=result.n_tokens,
            finished=result.finished,
            params=params,
        )

    def close(self) -> None:
        """The host outlives a source (settings changes reuse the loaded model)."""


class _Stream:
    """Collects the first pair's tokens as they are sampled and passes its text on, at most ~4 times a second."""

    def __init__(self, host: ModelHost, preview: Callable[[str, str], Any] | None) -> None:
        self.host, self.preview = host, preview
        self.tokens = {"a": [], "b": []}
        self.last = 0.0

    def watch(self, rows: dict[int, str]) -> Callable[[list[int], list[int]], None] | None:
        """An `on_step` for `generate` following `rows` (row index → side), or None without a preview."""
        if self.preview is None:
            return None
        stops: set[int] | None = None

        def on_step(live: list[int], tokens: list[int]) -> None:
            nonlocal stops
            if stops is None:
                from tuilab.modeling.generation import stop_token_ids

                lm = self.host.loaded()
                stops = set(stop_token_ids(lm.tokenizer, lm.model))
            grew = False
            for r, t in zip(live, tokens, strict=True):
                side = rows.get(r)
                if side is not None and t not in stops:
                    self.tokens[side].append(t)
                    grew = True
            now = time.monotonic()
            if grew and now - self.last >= 0.25:
                self.last = now
                self.flush()

        return on_step

    def flush(self) -> None:
        tok = self.host.loaded().tokenizer
        # A trailing U+FFFD is a character whose bytes are still coming: shown once it is whole.
        self.preview(*(tok.decode(self.tokens[s], skip_special_tokens=True).rstrip("\ufffd") for s in ("a", "b")))


def spec_dict(spec: SourceSpec) -> dict:
    return asdict(spec)
