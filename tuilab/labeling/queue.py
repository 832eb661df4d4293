"""The queue of ready labeling pairs, refilled by one background thread (side randomisation included).

The label screen never waits for a model: it `take()`s a pair that was generated,
stored and randomised earlier. The feeder's thread samples prompts, asks the
candidate source for both responses (batched), writes the two generations with its
own database connection, flips a coin for the sides and queues the pair. The UI
thread only takes pairs, puts an undone pair back, and asks for regenerations.

Gold-audit pairs jump the queue: a PPO run writes them into the database at its
checkpoints while it trains, and `take(db=...)` looks there each time it serves
the next pair, before the pairs generated earlier (those stay queued for later).
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuilab.labeling.candidates import Candidate, CandidateSource, GenerationStopped, source_pairs
from tuilab.records import Prompt


def lower_thread_priority(by: int) -> bool:
    """Raise the calling thread's nice value by `by` (Linux: per thread). False where unsupported."""
    if by <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except (OSError, AttributeError):
        return False
    return True


@dataclass
class FeedState:
    """What the pair queue is doing, as the label screen shows it."""

    phase: str = "starting"  # starting | loading | generating | idle | failed | no_prompts | stopped
    detail: str = ""
    ready: int = 0
    capacity: int = 4
    source: str = ""
    error: str = ""  # one-line reason when phase is failed / no_prompts
    traceback: str = ""
    eta_s: float | None = None  # expected seconds for the pair being generated
    started_at: float | None = None  # monotonic time the current generation began
    step: int | None = None  # decoding step of the current model call …
    steps: int | None = None  # … out of at most this many
    generation: int = 0  # which feeder (settings changes start a new one)
    # The first pair of the current call as it is generated (sides as they will be shown), for a screen
    # that has nothing else to show yet; cleared when the pair is queued.
    preview_prompt: Prompt | None = None
    preview_left: str = ""
    preview_right: str = ""


AUDIT_SOURCE = "audit pair"  # how an audit pair's `source` begins (the label screen marks it so)


@dataclass
class ReadyPair:
    """A pair as it will be shown: both generations are already stored.

    `swapped` is True when candidate A (the source's first) is shown on the right.
    """

    prompt: Prompt
    left: Candidate
    right: Candidate
    left_id: int
    right_id: int
    swapped: bool
    source: str = ""
    repeat_of: int | None = None  # a self-consistency repeat: the comparison it asks again (never shown)

    @property
    def is_audit(self) -> bool:
        return self.source.startswith(AUDIT_SOURCE)

    @property
    def a(self) -> Candidate:
        return self.right if self.swapped else self.left

    @property
    def b(self) -> Candidate:
        return self.left if self.swapped else self.right


class PairFeeder:
    """Keeps up to `capacity` pairs ready; `run()` is the body of the worker thread."""

    def __init__(
        self,
        db_path: str | Path,
        source: CandidateSource,
        *,
        capacity: int = 4,
        on_state: Callable[[FeedState], Any] | None = None,
        on_pair: Callable[[FeedState, int], Any] | None = None,
        seed: int | None = None,
        split: str = "train",
        max_batch: int = 4,
        generation: int = 0,
        poll_s: float = 5.0,
        nice: int = 10,
        repeats: Any = None,
        labeler: str = "human",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"queue size must be at least 1, got {capacity}")
        self.db_path = Path(db_path)
        self.source = source
        self.capacity = capacity
        self.split = split
        self.max_batch = max(1, max_batch)
        self.poll_s = poll_s
        self.nice = nice
        # Called from the worker thread: a UI passes something non-blocking (Textual's post_message).
        self._on_state = on_state or (lambda _state: None)
        self._on_pair = on_pair or (lambda _state, _prompt_id: None)
        self._rng = random.Random(seed)
        # Self-consistency repeats (labeling.repeats): their own random stream, so the sides of fresh
        # pairs do not depend on whether repeats are on.
        from tuilab.labeling.repeats import RepeatPolicy

        self.repeats = RepeatPolicy() if repeats is None else repeats
        self.repeats.check()
        self.labeler = labeler
        self._repeat_rng = random.Random(None if seed is None else seed + 7919)
        self._audit_rng = random.Random(None if seed is None else seed + 104729)
        self._served_audits: set[tuple[int, int]] = set()  # audit pairs queued or handed out (never twice)
        self._returned: set[int] = set()  # id() of pairs given back by put_front: served before anything else
        self._seeded = seed is not None
        self._cond = threading.Condition()
        self._ready: deque[ReadyPair] = deque()
        self._priority: deque[Prompt] = deque()
        self._recent: deque[int] = deque(maxlen=64)  # prompt ids handed out lately
        self._stop = threading.Event()
        self._halted = False  # after a failure: wait for retry()
        self._sec_per_pair: float | None = None
        self.state = FeedState(capacity=capacity, source=getattr(source, "label", ""), generation=generation)
        if hasattr(source, "progress"):
            source.progress = self._progress
        if hasattr(source, "stop_requested"):
            source.stop_requested = self._stop.is_set
        self._preview_swapped = False
        self._preview_prompt: Prompt | None = None
        if hasattr(source, "preview"):
            source.preview = self._preview

    # ------------------------------------------------------------ UI-thread API

    def take(self, prompt_id: int | None = None, db: Any = None) -> ReadyPair | None:
        """The next pair to show (or the ready pair for `prompt_id`), without waiting.

        Order: a pair given back by `put_front`; a gold-audit pair already in the ready
        queue; with `db` (the caller's own connection), a pending audit pair in the
        database not handed out yet — a PPO run writes them while it trains, so they are
        shown as soon as they exist; then the pairs generated earlier, oldest first.
        Serving an audit from the database leaves the ready queue as it was.
        """
        with self._cond:
            if prompt_id is not None:
                return self._pop(next((p for p in self._ready if p.prompt.id == prompt_id), None))
            if self._ready and id(self._ready[0]) in self._returned:
                return self._pop(self._ready[0])
            queued_audit = next((p for p in self._ready if p.is_audit), None)
            if queued_audit is not None:
                return self._pop(queued_audit)
        if db is not None:
            try:
                fresh = self._audit_from_db(db)
            except Exception:  # noqa: BLE001 - the UI thread shows a ready pair; the worker reports a broken db
                fresh = None
            if fresh is not None:
                return fresh
        with self._cond:
            return self._pop(self._ready[0] if self._ready else None)

    def _pop(self, pair: ReadyPair | None) -> ReadyPair | None:
        """Remove `pair` from the ready queue (the caller holds the lock)."""
        if pair is not None:
            self._ready.remove(pair)
            self._returned.discard(id(pair))
            self.state = replace(self.state, ready=len(self._ready))
            self._cond.notify_all()
        return pair

    def _audit_from_db(self, db: Any) -> ReadyPair | None:
        """The oldest pending audit pair this queue has not handed out, claimed (so never served twice)."""
        from tuilab.store.audits import pending_audit_pairs

        with self._cond:
            skip = len(self._served_audits)
        for audit in pending_audit_pairs(db, limit=skip + 1):
            if self._claim_audit(audit):
                return self._audit_pair(db, audit)
        return None

    def put_front(self, pair: ReadyPair) -> None:
        """Give back a pair that was on screen (undo brings an older one back): it is served next."""
        with self._cond:
            self._ready.appendleft(pair)
            self._returned.add(id(pair))
            self.state = replace(self.state, ready=len(self._ready))

    def regenerate(self, prompt: Prompt) -> None:
        """Generate a fresh pair for `prompt` before anything else."""
        with self._cond:
            self._priority.append(prompt)
            self._halted = False
            self._cond.notify_all()

    def retry(self) -> None:
        """Try again after a failure (model error, no prompts)."""
        with self._cond:
            self._halted = False
            self._cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def ready(self) -> int:
        with self._cond:
            return len(self._ready)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------ worker thread

    def run(self, is_cancelled: Callable[[], bool] = lambda: False) -> None:
        """Refill the queue until stopped; errors are shown, never raised.

        Run it in a thread of its own: it lowers that thread's CPU priority (`nice`), so
        the UI thread wins whenever both want a core.
        """
        from tuilab.store.db import open_db

        lower_thread_priority(self.nice)
        db = None
        try:
            db = open_db(self.db_path)  # this thread's own connection
            self._loop(db, is_cancelled)
        except Exception as exc:  # noqa: BLE001 - anything here must reach the screen
            self._fail(exc)
        finally:
            if db is not None:
                db.conn.close()
            if self.state.phase != "failed":
                self._set(phase="stopped", detail="")

    def _loop(self, db: Any, is_cancelled: Callable[[], bool]) -> None:
        self._set(phase="idle", detail="")
        while not self._stopping(is_cancelled):
            with self._cond:
                while True:
                    if self._stopping(is_cancelled):
                        return
                    if self._priority:
                        break
                    if self._halted:
                        if self.state.phase == "no_prompts":
                            # Poll: prompts may be added from another terminal.
                            self._cond.wait(self.poll_s)
                            self._halted = False
                            continue
                        self._cond.wait(0.5)
                    elif len(self._ready) < self.capacity:
                        break
                    else:
                        self._cond.wait(0.5)
                if self._priority:
                    prompts = [self._priority.popleft()]
                    priority = True
                else:
                    priority = False
                    # One pair first (on screen soonest), then batches: a batch of 8 rows decodes several
                    # times faster per pair than 2 on a CPU, and asking for one pair whenever the queue ran
                    # dry kept a quick labeler waiting on the slowest kind of call.
                    room = self.capacity - len(self._ready)
                    want = 1 if self._sec_per_pair is None else min(room, self.max_batch)
            if not priority:
                want -= self._add_audits(db, want)
                if want > 0:
                    want -= self._add_repeats(db, want)
                if want <= 0:
                    continue
                prompts = self._next_prompts(db, want)
                if not prompts:
                    self._halted = True
                    self._set(
                        phase="no_prompts",
                        error=f"No {self.split} prompts in the lab database {self.db_path}. "
                        "Add some with `tuilab data import FILE` (JSONL, CSV or one prompt per line); "
                        "they will appear here.",
                    )
                    continue
            self._produce(db, prompts, priority, is_cancelled)

    def _add_audits(self, db: Any, slots: int) -> int:
        """Pending gold-audit pairs (policy at a checkpoint vs the reference) fill free slots, sides at random."""
        from tuilab.store.audits import pending_audit_pairs

        added = 0
        with self._cond:
            skip = len(self._served_audits)
        for audit in pending_audit_pairs(db, limit=slots + skip):
            if added >= slots:
                break
            if self._claim_audit(audit):
                self._enqueue(self._audit_pair(db, audit))
                added += 1
        return added

    def _claim_audit(self, audit: Any) -> bool:
        """True once per audit pair: the UI thread (`take`) and the worker both serve them."""
        key = (min(audit.policy_id, audit.reference_id), max(audit.policy_id, audit.reference_id))
        with self._cond:
            if key in self._served_audits:
                return False
            self._served_audits.add(key)
            return True

    def _audit_pair(self, db: Any, audit: Any) -> ReadyPair:
        """An audit pair as shown: candidate A is the policy, on the right when the coin says swapped."""
        from tuilab.labeling.repeats import candidate_of
        from tuilab.store.generations import get_generation
        from tuilab.store.prompts import get_prompt

        policy, reference = get_generation(db, audit.policy_id), get_generation(db, audit.reference_id)
        with self._cond:
            swapped = self._audit_rng.random() < 0.5
        left, right = (reference, policy) if swapped else (policy, reference)
        return ReadyPair(get_prompt(db, audit.prompt_id), candidate_of(left), candidate_of(right), left.id,
                         right.id, swapped, source=f"{AUDIT_SOURCE} · {audit.run_id} step {audit.step}")

    def _add_repeats(self, db: Any, slots: int) -> int:
        """Fill some of `slots` with repeats of older decisions (each slot with probability `repeats.share`)."""
        from tuilab.labeling.repeats import pick_repeat

        if self.repeats.share <= 0:
            return 0
        wanted = sum(self._repeat_rng.random() < self.repeats.share for _ in range(slots))
        added = 0
        for _ in range(wanted):
            with self._cond:
                busy = {(min(p.left_id, p.right_id), max(p.left_id, p.right_id)) for p in self._ready}
            pair = pick_repeat(db, self._repeat_rng, self.repeats, self.labeler, busy=busy,
                               source=self.state.source)
            if pair is None:
                break
            self._enqueue(pair)
            added += 1
        return added

    def _enqueue(self, pair: ReadyPair) -> None:
        """A pair that needs no model (an audit, a repeat) joins the back of the queue."""
        with self._cond:
            self._ready.append(pair)
            ready = len(self._ready)
        self.state = replace(self.state, ready=ready)
        self._on_pair(self.state, pair.prompt.id)

    def _stopping(self, is_cancelled: Callable[[], bool]) -> bool:
        return self._stop.is_set() or is_cancelled()

    def _next_prompts(self, db: Any, n: int) -> list[Prompt]:
        from tuilab.store.prompts import sample_prompts

        with self._cond:
            busy = {p.prompt.id for p in self._ready} | set(self._recent)
        seed = self._rng.randrange(2**31) if self._seeded else None
        chosen: list[Prompt] = []
        for exclude_labeled in (True, False):
            pool = sample_prompts(db, n + len(busy), split=self.split, seed=seed, exclude_labeled=exclude_labeled)
            for p in pool:
                if p.id not in busy and all(p.id != c.id for c in chosen):
                    chosen.append(p)
            if len(chosen) >= n:
                break
        if not chosen:
            # Fewer prompts than the queue holds: repeat rather than starve.
            with self._cond:
                ready_ids = {p.prompt.id for p in self._ready}
            pool = sample_prompts(db, n, split=self.split, seed=seed)
            chosen = [p for p in pool if p.id not in ready_ids] or pool
            self._recent.clear()
        return chosen[:n]

    def _produce(self, db: Any, prompts: list[Prompt], priority: bool, is_cancelled: Callable[[], bool]) -> None:
        from tuilab.store.generations import add_generation
        from tuilab.store.prompts import transaction

        started = time.monotonic()
        eta = self._sec_per_pair * len(prompts) if self._sec_per_pair else None
        what = "regenerating this pair" if priority else f"generating {len(prompts)} pair{'s' * (len(prompts) > 1)}"
        # The coins are drawn before generating (same order as drawing them after) so the first pair can
        # stream onto the screen on the side it will be shown on.
        coins = [self._rng.random() < 0.5 for _ in prompts]
        self._preview_swapped, self._preview_prompt = coins[0], prompts[0]
        self._set(phase="generating", detail=what, error="", traceback="", eta_s=eta, started_at=started,
                  step=None, steps=None, preview_prompt=None, preview_left="", preview_right="")
        try:
            results = source_pairs(self.source, prompts)
        except Exception as exc:  # noqa: BLE001 - a model error is shown, the app stays up
            if priority:
                with self._cond:
                    self._priority.extendleft(prompts)
            if self._stopping(is_cancelled) or isinstance(exc, GenerationStopped):
                return  # stopped on purpose: not an error
            self._fail(exc)
            return
        elapsed = time.monotonic() - started
        per_pair = elapsed / max(len(prompts), 1)
        self._sec_per_pair = per_pair if self._sec_per_pair is None else 0.5 * self._sec_per_pair + 0.5 * per_pair
        for prompt, (a, b), swapped in zip(prompts, results, coins, strict=True):
            if self._stopping(is_cancelled):
                return
            with transaction(db):  # both sides or neither
                a_id = self._store(db, add_generation, prompt, a)
                b_id = self._store(db, add_generation, prompt, b)
            left, right, left_id, right_id = (b, a, b_id, a_id) if swapped else (a, b, a_id, b_id)
            pair = ReadyPair(prompt, left, right, left_id, right_id, swapped, self.state.source)
            with self._cond:
                if priority:
                    self._ready.appendleft(pair)
                else:
                    self._ready.append(pair)
                self._recent.append(prompt.id)
                ready = len(self._ready)
            self.state = replace(self.state, ready=ready, phase="idle", detail="", eta_s=None, started_at=None,
                                 step=None, steps=None, preview_prompt=None, preview_left="", preview_right="")
            self._on_pair(self.state, prompt.id)

    @staticmethod
    def _store(db: Any, add_generation: Callable, prompt: Prompt, c: Candidate) -> int:
        return add_generation(
            db,
            prompt.id,
            c.text,
            model=c.model,
            adapter=c.adapter,
            origin="model",
            params=dict(c.params),
            n_tokens=c.n_tokens,
            finished=c.finished,
        )

    def _preview(self, a_text: str, b_text: str) -> None:
        """The source's stream of the first pair (worker thread): published with the sides already drawn."""
        left, right = (b_text, a_text) if self._preview_swapped else (a_text, b_text)
        self._set(preview_prompt=self._preview_prompt, preview_left=left, preview_right=right)

    def _progress(self, text: str, step: int | None = None, total: int | None = None) -> None:
        phase = "loading" if text.startswith(("loading", "importing")) else "generating"
        self._set(phase=phase, detail=text, step=step, steps=total)

    def _fail(self, exc: BaseException) -> None:
        self._halted = True
        summary = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._set(phase="failed", error=summary, traceback="".join(traceback.format_exception(exc)),
                  eta_s=None, started_at=None)

    def _set(self, **changes: Any) -> None:
        with self._cond:
            changes.setdefault("ready", len(self._ready))
            self.state = replace(self.state, **changes)
            state = self.state
        self._on_state(state)
