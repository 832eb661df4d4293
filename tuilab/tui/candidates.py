"""Where the two responses of a labeling pair come from.

A `CandidateSource` turns a prompt into two candidates. It is called from the
generation worker thread only, never from the UI thread, so it may be slow. Two
implementations:

- `ModelCandidateSource`: the real thing. The base model is loaded lazily, in the
  worker, by a shared `ModelHost` (one model, one lock, PEFT adapters switched on it);
  this module imports no torch at import time.
- `FakeCandidateSource`: deterministic text with no torch, for tests, snapshots and the
  latency bench; knobs make it slow, blocked or failing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tuilab.config import DEFAULT_MODEL
from tuilab.records import Prompt

# progress(text) for a phase; progress(text, step, total) while decoding.
Progress = Callable[..., None]

MODES = ("samples", "ab")


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
    """

    mode: str = "samples"
    adapter_a: str = ""
    adapter_b: str = ""
    temperature_a: float = 0.8
    temperature_b: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int | None = None

    def check(self) -> None:
        """Raise ValueError with a message naming the bad field."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "ab" and not self.adapter_b and not self.adapter_a:
            raise ValueError("model A vs model B needs a policy adapter for B (none chosen)")
        if self.mode == "ab" and self.adapter_a == self.adapter_b:
            raise ValueError("A and B are the same model; choose a different adapter for B")
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


@dataclass(frozen=True)
class AdapterInfo:
    """A PEFT adapter folder found under models/ (relative path as shown and stored)."""

    path: Path
    name: str  # relative to models/
    task_type: str
    base_model: str


def find_adapters(models_dir: Path, *, causal_only: bool = True) -> list[AdapterInfo]:
    """Every folder under `models_dir` holding an `adapter_config.json` that can generate.

    Reward adapters cannot generate, so they are left out unless `causal_only` is False:
    task type SEQ_CLS / TOKEN_CLS, or the lab's reward layout (a `head.safetensors`
    beside the adapter, a `reward.json` above it). Half-written checkpoints (`*.tmp`)
    are skipped.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    found = []
    for cfg in sorted(models_dir.rglob("adapter_config.json")):
        try:
            data = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        task = str(data.get("task_type") or "CAUSAL_LM")
        folder = cfg.parent
        if any(part.endswith(".tmp") for part in folder.relative_to(models_dir).parts):
            continue
        reward = (folder / "head.safetensors").exists() or (folder.parent / "reward.json").exists()
        if causal_only and (task not in ("CAUSAL_LM", "None") or reward):
            continue
        found.append(
            AdapterInfo(
                path=folder,
                name=str(folder.relative_to(models_dir)),
                task_type=task,
                base_model=str(data.get("base_model_name_or_path") or ""),
            )
        )
    return found


# ------------------------------------------------------------------ the real model


class ModelHost:
    """One base model, loaded lazily in whichever worker asks first, with adapters on it.

    Every use goes through `lock`: never two threads inside one forward pass. Adapters
    are loaded once by path and switched with PEFT (`set_adapter`, `disable_adapter`).
    """

    def __init__(
        self,
        models_dir: Path,
        model: str = DEFAULT_MODEL,
        *,
        four_bit: bool = False,
        threads: int | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.model_name = model
        self.four_bit = four_bit
        # CPU threads for generation: all cores but one, so the UI thread always has a core.
        # On an oversubscribed machine, two torch threads on two busy cores decoded 12× slower
        # than one (measured here: 0.5 vs 6.2 tok/s).
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.lock = threading.RLock()
        self._loaded: Any = None
        self._adapters: dict[str, str] = {}  # adapter path -> PEFT adapter name

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def name(self) -> str:
        """The loaded model's folder name (what generations record), else the name asked for."""
        return self._loaded.name if self._loaded is not None else Path(self.model_name).name

    def loaded(self, progress: Progress | None = None) -> Any:
        """The `LoadedModel`; loads it on first call (call with `lock` held)."""
        if self._loaded is None:
            from tuilab.modeling.loading import load_model
            from tuilab.modeling.registry import find_model

            say = progress or (lambda _text: None)
            path = find_model(self.model_name, self.models_dir, progress=say)
            say(f"loading {Path(path).name}{' (4-bit)' if self.four_bit else ''}")
            self._loaded = load_model(path, four_bit=self.four_bit)
        return self._loaded

    def _adapter_name(self, adapter: str, progress: Progress | None) -> str:
        if adapter in self._adapters:
            return self._adapters[adapter]
        path = Path(adapter)
        if not path.is_absolute():
            path = self.models_dir / path
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"no PEFT adapter at {path} (adapter_config.json missing)")
        if progress:
            progress(f"loading adapter {adapter}")
        lm = self.loaded(progress)
        name = f"cand{len(self._adapters)}"
        from peft import PeftModel

        if isinstance(lm.model, PeftModel):
            lm.model.load_adapter(str(path), adapter_name=name)
        else:
            lm.model = PeftModel.from_pretrained(lm.model, str(path), adapter_name=name)
            lm.model.eval()
        self._adapters[adapter] = name
        return name

    @contextmanager
    def adapter(self, adapter: str, progress: Progress | None = None) -> Iterator[Any]:
        """Yield the LoadedModel with `adapter` active ('' = the bare base model)."""
        lm = self.loaded(progress)
        if adapter:
            name = self._adapter_name(adapter, progress)
            lm.model.set_adapter(name)
            yield lm
            return
        disable = getattr(lm.model, "disable_adapter", None)
        ctx = disable() if self._adapters and callable(disable) else nullcontext()
        with ctx:
            yield lm

    @contextmanager
    def cpu_threads(self) -> Iterator[None]:
        """Decode with `threads` torch threads in this thread, then restore the previous count."""
        import torch

        before = torch.get_num_threads()
        if before == self.threads:
            yield
            return
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        """Drop the model (the next use reloads it)."""
        with self.lock:
            self._loaded = None
            self._adapters.clear()


class ModelCandidateSource:
    """Candidates sampled from the base model and its adapters, in the calling (worker) thread."""

    def __init__(self, host: ModelHost, spec: SourceSpec | None = None) -> None:
        self.host = host
        self.spec = spec or SourceSpec()
        self.spec.check()
        self.label = self.spec.describe(host.name)
        self.progress: Progress | None = None
        self.stop_requested: Callable[[], bool] | None = None  # set by the feeder
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
            if same:
                # Both samples of every pair in one batched call.
                rows = self._generate("", messages + messages, spec.temperature_a, seed)
                side_a, side_b = rows[: len(prompts)], rows[len(prompts):]
            else:
                side_a = self._generate(spec.adapter_a if spec.mode == "ab" else "", messages,
                                        spec.temperature_a, seed)
                side_b = self._generate(spec.adapter_b if spec.mode == "ab" else "", messages,
                                        spec.temperature_b, None if seed is None else seed + 10_000)
        a_adapter = spec.adapter_a if spec.mode == "ab" else ""
        b_adapter = spec.adapter_b if spec.mode == "ab" else ""
        return [
            (self._candidate(ra, "A", a_adapter, spec.temperature_a, seed),
             self._candidate(rb, "B", b_adapter, spec.temperature_b, seed))
            for ra, rb in zip(side_a, side_b, strict=True)
        ]

    def _generate(self, adapter: str, messages: list, temperature: float, seed: int | None) -> list:
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
                    return generate(lm.model, lm.tokenizer, messages, cfg)
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


# ------------------------------------------------------------------ the fake


_OPENERS = [
    "Sure! Here is a short answer.",
    "Good question.",
    "In brief:",
    "Let me explain step by step.",
    "There are a few things to know.",
    "Here is what I would say.",
]
_BODIES = [
    "The main idea is simple: {topic} depends on a handful of causes that work together.",
    "First, look at **{topic}** from the outside. Second, ask what changes over time.",
    "- one key point about {topic}\n- a second, related point\n- a caveat worth noting",
    "Most people get {topic} slightly wrong; the details matter more than the headline.",
    "A quick example makes {topic} clearer than any definition could.",
    "```python\nprint('{topic}')\n```\nThat snippet shows the idea in one line.",
]
_CLOSERS = [
    "I hope this helps.",
    "Let me know if you want more detail.",
    "That is the gist of it.",
    "",
]


class FakeCandidateSource:
    """Deterministic candidates with no torch: side B is longer than side A.

    Knobs: `delay` seconds per pair (slow model), `fail` (raise `RuntimeError(fail)`
    on every call, or only from call `fail_after` on), `gate` (a `threading.Event` the
    call waits on: a test holds the queue empty for as long as it likes).
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        fail: str | None = None,
        fail_after: int = 0,
        gate: threading.Event | None = None,
        model: str = "fake-model",
        adapter_b: str = "",
        label: str = "",
    ) -> None:
        self.delay = delay
        self.fail = fail
        self.fail_after = fail_after
        self.gate = gate
        self.model = model
        self.adapter_b = adapter_b
        self.label = label or (f"{model} vs {adapter_b}" if adapter_b else f"{model}: two samples")
        self.progress: Progress | None = None
        self.stop_requested: Callable[[], bool] | None = None
        self.calls = 0
        self.closed = False

    def _stopping(self) -> bool:
        return self.stop_requested is not None and self.stop_requested()

    def pair(self, prompt: Prompt) -> tuple[Candidate, Candidate]:
        n = self.calls
        self.calls += 1
        if self.gate is not None:
            while not self.gate.wait(0.05):
                if self._stopping():
                    raise GenerationStopped("fake generation stopped")
        if self.delay:
            if self.progress:
                self.progress("generating (fake, slow)")
            time.sleep(self.delay)
        if self.fail is not None and n >= self.fail_after:
            raise RuntimeError(self.fail)
        return (self._one(prompt, n, "A", 1, ""), self._one(prompt, n, "B", 3, self.adapter_b))

    def _one(self, prompt: Prompt, n: int, side: str, sentences: int, adapter: str) -> Candidate:
        h = int(hashlib.sha256(f"{prompt.id}:{n}:{side}".encode()).hexdigest(), 16)
        topic = _topic(prompt.text)
        parts = [_OPENERS[h % len(_OPENERS)]]
        start = (h >> 4) % len(_BODIES)
        for i in range(sentences):  # distinct bodies, rotated by the hash
            parts.append(_BODIES[(start + i) % len(_BODIES)].format(topic=topic))
        closer = _CLOSERS[(h >> 12) % len(_CLOSERS)]
        if closer:
            parts.append(closer)
        text = "\n\n".join(parts)
        return Candidate(
            text=text,
            model=self.model,
            adapter=adapter,
            n_tokens=len(text.split()),
            finished=side == "A" or n % 3 != 2,
            params={"side": side, "temperature": 0.8, "fake": True, "call": n},
        )

    def close(self) -> None:
        self.closed = True


def _topic(text: str) -> str:
    words = [w.strip("?.!,:;\"'").lower() for w in text.split()]
    words = [w for w in words if len(w) > 3][:3]
    return " ".join(words) or "this"


def spec_dict(spec: SourceSpec) -> dict:
    return asdict(spec)
