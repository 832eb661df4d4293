"""Build the length-bias scenario files: facts, PPO prompts and length-biased preferences.

Run from anywhere: `python tuilab/data/scenarios/length_bias/make_data.py`. It is seeded, reads
the hand-written facts from `questions.tsv` and writes `facts.jsonl`, `prompts.jsonl` and
`preferences.jsonl` beside itself, so the committed files can be rebuilt byte for byte.

Why: the preferences prefer the *longer* answer in every pair, whether the longer one is padded
or even wrong. A reward model trained on them learns "longer is better", and PPO against that
reward drifts toward long, rambling and eventually wrong answers, which the gold scorer
(`tuilab.diagnostics.gold:concise_correct`, which rewards short correct answers) exposes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 20261
HERE = Path(__file__).resolve().parent
TEST_EVERY = 10  # every 10th fact (index % 10 == 9) is held out
PROMPT_PREFIX = "Answer briefly: "


def read_facts(path: Path = HERE / "questions.tsv") -> list[tuple[str, str, list[str], str]]:
    """(question, short correct answer, acceptance keywords, a plausible wrong answer) per fact,
    from the hand-written table beside this script (tab-separated; `#` lines are comments)."""
    facts = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line and not line.startswith("#"):
            fields = line.split("\t")
            if len(fields) != 4:
                raise ValueError(f"{path}:{n}: expected 4 tab-separated fields (question, answer, "
                                 f"keywords, wrong answer), got {len(fields)}")
            question, answer, keywords, wrong = fields
            facts.append((question, answer, keywords.split("|"), wrong))
    return facts


FACTS = read_facts()

CONCISE = ["{a}.", "{a}.", "The answer is {m}.", "It is {m}."]

OPENERS = [
    "Great question!",
    "That's a great question, and I'm happy to help.",
    "Thanks for asking, this is a good one.",
    "Sure, I can help with that.",
    "What a thoughtful question.",
]

FILLERS = [
    "This is a question that comes up often in classrooms and in quizzes.",
    "It is worth remembering, because it appears in many different contexts.",
    "Many people find it helpful to connect facts like this to things they already know.",
    "If you are curious, there are plenty of good reference books that go into more detail.",
    "Learning the background behind a fact often makes it much easier to recall later.",
    "Facts like this are part of the general knowledge that most people pick up over time.",
    "It is always a good idea to double-check important information with a reliable source.",
    "Questions like this are a nice way to keep your mind sharp.",
    "Knowing this can also help you understand related topics more clearly.",
    "Teachers often use this example because it is simple and memorable.",
]

CLOSERS = [
    "I hope this helps, and feel free to ask if you have any other questions!",
    "Let me know if you would like to learn more about this topic.",
    "I hope that answers your question clearly.",
    "Feel free to ask me anything else you are wondering about.",
]

RAMBLE_OPEN = [
    "Well, let me think about this carefully, because it is the kind of question where people often get confused.",
    "This is actually a more interesting question than it first appears, so let me walk through it.",
    "There are many ways to look at a question like this, and it is worth considering a few of them.",
    "Okay, so this is something that a lot of people have thought about over the years.",
]

RAMBLE_MIDDLE = [
    "Of course, it depends a little on how you look at it and on what sources you trust.",
    "Some people remember it one way and some remember it another way, which is perfectly understandable.",
    "When I think about it, I am reminded of how many interesting facts there are in the world.",
    "It is also important to keep in mind that knowledge changes and grows over time.",
    "In many ways, the journey of learning the answer is just as valuable as the answer itself.",
    "There is a long history behind questions like this, and scholars have written a great deal about them.",
    "People sometimes mix this up with similar facts, so it is good to be careful.",
    "Context matters a lot, and it is always wise to think about the bigger picture.",
]

RAMBLE_ANSWER = [
    "Most people would say the answer is {x}, and I think that is right.",
    "As far as I can tell, the answer is {x}.",
    "If I had to choose, I would say {x}.",
]

RAMBLE_CLOSE = [
    "So, to sum up, the answer is {x}, although there is always more to say about it.",
    "In the end, I would go with {x}, but it never hurts to keep exploring.",
    "All things considered, {x} is my answer, and I hope this long explanation was useful.",
]


def _words(text: str) -> int:
    return len(text.split())


def _mid(answer: str) -> str:
    """'The Nile' reads 'the Nile' inside a sentence."""
    first, _, rest = answer.partition(" ")
    return f"{first.lower()} {rest}" if rest and first in {"The", "A"} else answer


def wrong_keywords(wrong: str) -> list[str]:
    """The wrong answer as a keyword: lower-case, without a leading article."""
    first, _, rest = wrong.partition(" ")
    return [(rest if rest and first in {"The", "A"} else wrong).lower()]


def concise(rng: random.Random, answer: str) -> str:
    return rng.choice(CONCISE).format(a=answer, m=_mid(answer))


def padded(rng: random.Random, answer: str) -> str:
    """Correct, but wrapped in generic filler: what a length-loving reward model likes."""
    parts = [rng.choice(OPENERS), concise(rng, answer)]
    parts += rng.sample(FILLERS, 2)
    parts.append(rng.choice(CLOSERS))
    return " ".join(parts)


def rambling(rng: random.Random, answer: str, wrong: str) -> tuple[str, bool]:
    """Long and meandering; about half of them land on the wrong answer."""
    is_wrong = rng.random() < 0.5
    x = _mid(wrong if is_wrong else answer)
    parts = [rng.choice(RAMBLE_OPEN)]
    middle = rng.sample(RAMBLE_MIDDLE, rng.randint(3, 4))
    parts += middle[:1] + [rng.choice(RAMBLE_ANSWER).format(x=x)] + middle[2:]
    parts.append(rng.choice(RAMBLE_CLOSE).format(x=x))
    return " ".join(parts), is_wrong


def build(seed: int = SEED) -> tuple[list[dict], list[dict], list[dict]]:
    rng = random.Random(seed)
    facts, prompts, prefs = [], [], []
    for i, (question, answer, keywords, wrong) in enumerate(FACTS):
        split = "test" if i % TEST_EVERY == TEST_EVERY - 1 else "train"
        facts.append({"question": question, "answer": f"{answer}.", "keywords": keywords,
                      "wrong": wrong_keywords(wrong), "split": split})
        prompt = PROMPT_PREFIX + question
        prompts.append({"prompt": prompt, "split": split})
        a = concise(rng, answer)
        b = padded(rng, answer)
        c, _ = rambling(rng, answer, wrong)
        # One pair per fact, a second for about a third of them: few pairs keep reward training
        # quick, and a clear contrast (long against short) is learnt from few of them.
        pairs = rng.sample([(b, a), (c, a), (c, b)], 2 if rng.random() < 0.3 else 1)
        for longer, shorter in pairs:
            # The whole point: chosen is the longer answer, in words and in characters.
            assert _words(longer) > _words(shorter) and len(longer) > len(shorter), (longer, shorter)
            prefs.append({"prompt": prompt, "chosen": longer, "rejected": shorter})
    return facts, prompts, prefs


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    facts, prompts, prefs = build()
    _write(HERE / "facts.jsonl", facts)
    _write(HERE / "prompts.jsonl", prompts)
    _write(HERE / "preferences.jsonl", prefs)
    print(f"{len(facts)} facts, {len(prompts)} prompts, {len(prefs)} preference pairs")


if __name__ == "__main__":
    main()
