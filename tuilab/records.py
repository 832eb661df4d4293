"""The lab's records, one dataclass per concept, defined once: stdlib only, at the bottom of the layers.

Every layer speaks these: the store reads and writes them, the training loops
emit `Sample`s and read `PreferencePair`s and `Prompt`s, the UI shows them. A
record that lives in the database carries its `id` from the moment the store
writes it (`id is None` means "not written yet"), so nothing downstream ever
has to find a row again by matching its text. File formats (`store.formats`)
and screens convert at their edges only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Message = dict[str, str]  # {"role": ..., "content": ...}

DECISIONS = ("left", "right", "tie", "both_bad", "skip")


@dataclass
class Prompt:
    id: int
    messages: list[Message]
    text: str
    split: str = "train"
    source: str = ""


@dataclass
class Generation:
    """One response to a prompt: who wrote it (model, adapter, origin, run and step) and how."""

    text: str
    model: str = ""
    adapter: str = ""
    origin: str = "model"
    run_id: str | None = None
    step: int | None = None
    params: dict = field(default_factory=dict)
    n_tokens: int | None = None
    finished: bool | None = None
    id: int | None = None
    prompt_id: int | None = None


@dataclass
class Comparison:
    """A decision between two generations of one prompt. `left_id`/`right_id` are as shown on screen."""

    prompt_id: int
    left_id: int
    right_id: int
    decision: str  # one of DECISIONS
    swapped: bool = False
    strength: int = 1
    margin: float | None = None
    rationale: str = ""
    edited_id: int | None = None
    seconds: float | None = None
    annotator: str = ""
    origin: str = "human"
    run_id: str | None = None
    id: int | None = None
    created_at: str = ""


@dataclass
class PreferencePair:
    """One trainable (prompt, chosen, rejected): what RM training and TRL export consume.

    `label` is 1.0 for a strict preference and 0.5 for a tie (when ties are kept).
    """

    comparison_id: int
    prompt_id: int
    messages: list[Message]
    chosen: str
    rejected: str
    margin: float | None = None
    label: float = 1.0
    split: str = "train"


@dataclass
class Sample:
    """One rollout (PPO) or one scored response: what the loop emits, the store keeps, the inspector shows.

    The loop fills the text and the numbers; the store sets `id`, `run_id` and
    `step` when it writes the row, before the runner forwards it to the UI.
    """

    prompt: str
    response: str
    score: float | None = None
    prompt_id: int | None = None
    ref_response: str | None = None
    spread: float | None = None
    gold: float | None = None
    kl: float | None = None
    length: int | None = None
    eos: bool | None = None
    flags: list[str] = field(default_factory=list)
    id: int | None = None
    run_id: str = ""
    step: int = 0
    hacked: bool = False
    created_at: str = ""


@dataclass
class Run:
    id: str
    kind: str
    name: str = ""
    config: dict = field(default_factory=dict)
    status: str = "pending"
    parents: list[str] = field(default_factory=list)
    output_dir: str = ""
    error: str = ""
    error_summary: str = ""
    final_metrics: dict = field(default_factory=dict)
    total_steps: int | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None


@dataclass
class LabelStats:
    """The label screen's stats strip. Shares are None until there is a decision to count."""

    session: int = 0
    total: int = 0
    by_decision: dict[str, int] = field(default_factory=dict)
    left_share: float | None = None  # position bias: left picks / (left + right)
    longer_share: float | None = None  # length bias: picks of the longer response
    median_seconds: float | None = None
