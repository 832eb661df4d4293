"""Hidden rules for the simulated-annotator tests (importable as `tests.labeling.rules:NAME`)."""

from __future__ import annotations


def brevity(text: str) -> float:
    """The shorter answer is better."""
    return -float(len(text))


def shorter_of(a: str, b: str) -> str:
    return "left" if len(a) < len(b) else "right" if len(b) < len(a) else "tie"


def says_nonsense(a: str, b: str) -> str:
    return "perhaps"
