"""The demo model's corpus, generated in code: capitals, arithmetic, canned answers and the fallback, each in
many phrasings, some behind a system prompt or a previous exchange (see corpus_data for the tables)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .corpus_data import (
    ADD_MAX,
    ARITH_TEMPLATES,
    CANNED,
    CAPITAL_TEMPLATES,
    COUNTRIES,
    FALLBACK,
    FALLBACK_FIXED,
    FALLBACK_LANGS,
    FALLBACK_PEOPLE,
    FALLBACK_PLACES,
    FALLBACK_TEMPLATES,
    FALLBACK_TOPICS,
    FILLER_WORDS,
    MUL_MAX,
    SYSTEM_PROMPTS,
)
from .template import Message

HARD_LOSS = 0.2  # a fact whose worst answer token costs more than this (nats) is sampled again
MAX_EXTRA_ARITH = 300  # at most this many extra arithmetic samples per epoch


@dataclass(frozen=True)
class Example:
    """One training/eval conversation: ``messages`` end with a user turn; ``answer`` is the reply."""

    kind: str
    messages: tuple[tuple[str, str], ...]
    answer: str

    def as_messages(self) -> list[Message]:
        return [{"role": role, "content": content} for role, content in self.messages]


def _vary_case(question: str, rng: random.Random) -> str:
    """Small surface variations: all lower-case, drop the final punctuation, capitalize."""
    r = rng.random()
    if r < 0.2:
        question = question.lower()
    elif r < 0.3 and question.rstrip("?.!"):
        question = question.rstrip("?.!")
    elif question[:1].islower() and r < 0.5:
        question = question[:1].upper() + question[1:]
    return question


def capital_question(country: int, rng: random.Random, template: str | None = None) -> tuple[str, str]:
    name, _, aliases = COUNTRIES[country]
    typed = rng.choice((name, name, name, *aliases)) if aliases else name
    tpl = template if template is not None else rng.choice(CAPITAL_TEMPLATES)
    question = tpl.format(c=typed)
    question = question[:1].upper() + question[1:] if tpl.startswith("{c}") else question
    return _vary_case(question, rng), capital_answer(country)


def capital_answer(country: int) -> str:
    name, capital, _ = COUNTRIES[country]
    return f"The capital of {name} is {capital}" + ("" if capital.endswith(".") else ".")


def arith_facts() -> list[tuple[str, int, int]]:
    facts = [(op, a, b) for op in "+-" for a in range(ADD_MAX + 1) for b in range(ADD_MAX + 1)]
    facts += [("*", a, b) for a in range(MUL_MAX + 1) for b in range(MUL_MAX + 1)]
    return facts


def arith_answer(op: str, a: int, b: int) -> str:
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return f"{a} {op} {b} = {value}."


def arith_question(op: str, a: int, b: int, rng: random.Random, template: str | None = None) -> tuple[str, str]:
    tpl = template if template is not None else rng.choice(ARITH_TEMPLATES[op])
    question = tpl.format(a=a, b=b)
    if rng.random() < 0.15:
        question = question.lower()
    elif rng.random() < 0.1:
        question = question.rstrip("?.!")
    return question, arith_answer(op, a, b)


def fallback_question(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.25:
        question = rng.choice(FALLBACK_FIXED)
    elif r < 0.85:
        question = rng.choice(FALLBACK_TEMPLATES).format(
            t=rng.choice(FALLBACK_TOPICS),
            p=rng.choice(FALLBACK_PEOPLE),
            x=rng.choice(FALLBACK_PLACES),
            lang=rng.choice(FALLBACK_LANGS),
        )
    elif r < 0.93:
        # Arithmetic outside the trained range.
        op = rng.choice("+-*")
        a, b = rng.randint(21, 999), rng.randint(0, 999)
        if rng.random() < 0.5:
            a, b = b, a
        question = rng.choice(ARITH_TEMPLATES[op]).format(a=a, b=b)
    else:
        words = rng.sample(FILLER_WORDS, rng.randint(2, 7))
        question = " ".join(words).capitalize() + rng.choice(("?", ".", ""))
    return _vary_case(question, rng)


def _wrap(kind: str, question: str, answer: str, rng: random.Random, p_context: float = 0.1) -> Example:
    """Optionally add a system prompt and/or a previous exchange in front of the question."""
    turns: list[tuple[str, str]] = []
    if rng.random() < 0.3:
        turns.append(("system", rng.choice(SYSTEM_PROMPTS)))
    if rng.random() < p_context:
        if rng.random() < 0.5:
            q0, a0 = capital_question(rng.randrange(len(COUNTRIES)), rng)
        else:
            op = rng.choice("+-")
            q0, a0 = arith_question(op, rng.randint(0, ADD_MAX), rng.randint(0, ADD_MAX), rng)
        turns += [("user", q0), ("assistant", a0)]
    turns.append(("user", question))
    return Example(kind, tuple(turns), answer)


def corpus_epoch(rng: random.Random, hard: dict[str, float] | None = None) -> list[Example]:
    """One pass over the corpus: every arithmetic fact once, every country several times, ...

    ``hard`` maps a capital/arithmetic answer to its worst token loss when last trained on; facts
    the model still gets wrong come back in extra phrasings (cheap hard-example mining).
    """
    hard = hard or {}
    out: list[Example] = []
    facts = arith_facts()
    # Every fact once, then one more phrasing of (at most MAX_EXTRA_ARITH of) the hardest ones.
    hardest = sorted(facts, key=lambda f: -hard.get(arith_answer(*f), 0.0))[:MAX_EXTRA_ARITH]
    for op, a, b in facts + [f for f in hardest if hard.get(arith_answer(*f), 0.0) > HARD_LOSS]:
        q, ans = arith_question(op, a, b, rng)
        out.append(_wrap("arith", q, ans, rng))
    for i in range(len(COUNTRIES)):
        for _ in range(6 + 3 * (hard.get(capital_answer(i), 0.0) > HARD_LOSS)):
            q, ans = capital_question(i, rng)
            out.append(_wrap("capital", q, ans, rng))
    for _ in range(2):
        for kind, (answer, questions) in CANNED.items():
            for q in questions:
                out.append(_wrap(kind, _vary_case(q, rng), answer, rng, p_context=0.05))
    for _ in range(120):
        out.append(_wrap("fallback", fallback_question(rng), FALLBACK, rng, p_context=0.05))
    rng.shuffle(out)
    return out
