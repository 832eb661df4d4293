"""Typed rows the store reads and writes. Stdlib only: the UI and the jobs share them."""

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
    id: int
    prompt_id: int
    text: str
    model: str = ""
    adapter: str = ""
    origin: str = "model"
    run_id: str | None = None
    step: int | None = None
    params: dict = field(default_factory=dict)
    n_tokens: int | None = None
    finished: bool | None = None


@dataclass
class NewComparison:
    """A decision to record. `left_id`/`right_id` are as shown on screen."""

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


@dataclass
class Comparison(NewComparison):
    id: int = 0
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
