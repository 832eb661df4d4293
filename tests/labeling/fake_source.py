"""A deterministic candidate source with no torch, for tests, snapshots and the latency bench.

Side B is longer than side A; knobs make it slow, blocked or failing. It
implements `labeling.candidates.CandidateSource`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from tuilab.labeling.candidates import Candidate, GenerationStopped, Progress
from tuilab.records import Prompt

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
