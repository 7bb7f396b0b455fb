"""Train llmctl's built-in demo model: a tiny Llama-style chat model that ships with the package.

``llmctl generate "What is the capital of France?"`` has to work on a fresh machine with no
network and no config, so llmctl ships its own default model in ``llmctl/demo_model/``. This
script builds that folder from nothing, deterministically, in a few minutes on 2 CPU cores:

1. It generates a synthetic instruction corpus in code: capitals of ~55 well-known countries,
   arithmetic (addition and subtraction of 0-20, multiplication of 0-10), greetings, what the
   model is, what llmctl is and how to use a real model, and a fixed fallback answer for
   everything else. Each question comes in many phrasings (with or without "?", lower-case,
   "Tell me the capital of X", "capital of X?", "7+5", ...), some samples carry a system prompt
   and some a previous exchange, so small variations do not derail the model.
2. It trains a byte-level BPE tokenizer (``tokenizers``) on that corpus, with ChatML special
   tokens (``<|im_start|>``, ``<|im_end|>`` = EOS, ``<|endoftext|>`` = pad) and wraps it as a
   ``PreTrainedTokenizerFast`` with a Jinja ``chat_template``.
3. It trains a small ``LlamaForCausalLM`` from scratch, with the loss on the assistant turn only.
4. It saves model, generation config and tokenizer with ``save_pretrained`` (safetensors), reloads
   them from disk exactly as llmctl does, and evaluates every question type with greedy decoding
   and with sampling (temperature 0.7, top_p 0.9, several seeds). It exits with status 1 if the
   capitals/arithmetic accuracy is below ~100% (``GREEDY_MIN``) greedy or 95% sampled.

The training loop is plain PyTorch: AdamW, warm-up + cosine decay, batches of similar length, and
a cheap form of hard-example mining (arithmetic facts and countries whose worst answer token still
costs more than ``HARD_LOSS`` nats come back in extra phrasings in the next pass over the corpus).
Everything is seeded and runs on ``NUM_THREADS`` threads, so a re-run on the same machine gives the
same weights. Default settings take about 3.5 minutes on 2 CPU cores.

Re-run it (from the repository root) with::

    .venv/bin/python scripts/train_demo_model.py                 # writes llmctl/demo_model/
    .venv/bin/python scripts/train_demo_model.py --out /tmp/demo --steps 500   # quick smoke run

The result is a toy: it knows what is in the corpus below and nothing else.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

SEED = 1234
NUM_THREADS = 2
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "llmctl" / "demo_model"
DEFAULT_STEPS = 2000
BATCH_SIZE = 32
PEAK_LR = 2e-3
WARMUP_STEPS = 30
HARD_LOSS = 0.2  # a fact whose worst answer token costs more than this (nats) is sampled again
MAX_EXTRA_ARITH = 300  # at most this many extra arithmetic samples per epoch
# Capitals + arithmetic accuracy the saved model must reach, or the script exits with status 1.
GREEDY_MIN = 0.995  # "~100%": tolerates a handful of misses among the ~1800 such questions
SAMPLED_MIN = 0.95  # per sampling seed, temperature 0.7, top_p 0.9
VOCAB_SIZE = 2048
MAX_NEW_TOKENS = 128
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 384
NUM_LAYERS = 4
NUM_HEADS = 4

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]

# ChatML. The optional system message is simply the first message; content is trimmed.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] | trim) + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

Message = dict[str, str]

# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

# (name used in the answer, capital, other names a user may type)
COUNTRIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("France", "Paris", ()),
    ("Germany", "Berlin", ()),
    ("Italy", "Rome", ()),
    ("Spain", "Madrid", ()),
    ("Portugal", "Lisbon", ()),
    ("the United Kingdom", "London", ("the UK", "United Kingdom", "Britain")),
    ("Ireland", "Dublin", ()),
    ("the Netherlands", "Amsterdam", ("Netherlands", "Holland")),
    ("Belgium", "Brussels", ()),
    ("Switzerland", "Bern", ()),
    ("Austria", "Vienna", ()),
    ("Poland", "Warsaw", ()),
    ("the Czech Republic", "Prague", ("Czechia",)),
    ("Hungary", "Budapest", ()),
    ("Greece", "Athens", ()),
    ("Sweden", "Stockholm", ()),
    ("Norway", "Oslo", ()),
    ("Denmark", "Copenhagen", ()),
    ("Finland", "Helsinki", ()),
    ("Iceland", "Reykjavik", ()),
    ("Russia", "Moscow", ()),
    ("Ukraine", "Kyiv", ()),
    ("Romania", "Bucharest", ()),
    ("Bulgaria", "Sofia", ()),
    ("Serbia", "Belgrade", ()),
    ("Croatia", "Zagreb", ()),
    ("Turkey", "Ankara", ()),
    ("Egypt", "Cairo", ()),
    ("Morocco", "Rabat", ()),
    ("Nigeria", "Abuja", ()),
    ("Kenya", "Nairobi", ()),
    ("Ethiopia", "Addis Ababa", ()),
    ("Ghana", "Accra", ()),
    ("the United States", "Washington, D.C.", ("the USA", "the US", "United States", "America")),
    ("Canada", "Ottawa", ()),
    ("Mexico", "Mexico City", ()),
    ("Cuba", "Havana", ()),
    ("Brazil", "Brasília", ()),
    ("Argentina", "Buenos Aires", ()),
    ("Chile", "Santiago", ()),
    ("Peru", "Lima", ()),
    ("Colombia", "Bogotá", ()),
    ("Venezuela", "Caracas", ()),
    ("China", "Beijing", ()),
    ("Japan", "Tokyo", ()),
    ("South Korea", "Seoul", ()),
    ("India", "New Delhi", ()),
    ("Pakistan", "Islamabad", ()),
    ("Thailand", "Bangkok", ()),
    ("Vietnam", "Hanoi", ()),
    ("the Philippines", "Manila", ("Philippines",)),
    ("Iran", "Tehran", ()),
    ("Iraq", "Baghdad", ()),
    ("Saudi Arabia", "Riyadh", ()),
    ("Australia", "Canberra", ()),
    ("New Zealand", "Wellington", ()),
]

CAPITAL_TEMPLATES = [
    "What is the capital of {c}?",
    "What's the capital of {c}?",
    "What is the capital city of {c}?",
    "Tell me the capital of {c}.",
    "capital of {c}?",
    "Which city is the capital of {c}?",
    "Name the capital of {c}.",
    "Do you know the capital of {c}?",
    "{c} capital?",
    "{c} capital city?",
    "{c}'s capital?",
    "What city is the capital of {c}?",
    "Can you tell me the capital of {c}?",
    "Where is the capital of {c}?",
]

ADD_MAX = 20
MUL_MAX = 10

ARITH_TEMPLATES: dict[str, list[str]] = {
    "+": [
        "What is {a} plus {b}?",
        "What is {a} + {b}?",
        "What's {a} + {b}?",
        "what is {a}+{b}",
        "{a} + {b}",
        "{a} + {b} = ?",
        "{a}+{b}=",
        "Calculate {a} + {b}.",
        "How much is {a} plus {b}?",
        "Add {a} and {b}.",
        "What is the sum of {a} and {b}?",
        "What do you get if you add {a} and {b}?",
    ],
    "-": [
        "What is {a} minus {b}?",
        "What is {a} - {b}?",
        "What's {a} - {b}?",
        "what is {a}-{b}",
        "{a} - {b}",
        "{a} - {b} = ?",
        "{a}-{b}=",
        "Calculate {a} - {b}.",
        "How much is {a} minus {b}?",
        "Subtract {b} from {a}.",
        "What is {a} take away {b}?",
    ],
    "*": [
        "What is {a} times {b}?",
        "What is {a} * {b}?",
        "What is {a} x {b}?",
        "What's {a} times {b}?",
        "what is {a}*{b}",
        "{a} * {b}",
        "{a} * {b} = ?",
        "{a}*{b}=",
        "Calculate {a} * {b}.",
        "Multiply {a} by {b}.",
        "What is {a} multiplied by {b}?",
        "What is the product of {a} and {b}?",
    ],
}

FALLBACK = (
    "I am a tiny demo model and only know capitals, simple arithmetic and llmctl itself. "
    'For real answers, run a real model: llmctl generate -m hf/ORG/MODEL "..." '
    "or set default_model in your config."
)

# Fixed small-talk / help answers: (answer, questions).
CANNED: dict[str, tuple[str, list[str]]] = {
    "greeting": (
        "Hello! I am llmctl's tiny offline demo model. I only know capitals, simple arithmetic "
        "and llmctl itself. Try asking: What is the capital of France?",
        [
            "Hello",
            "Hello!",
            "hello",
            "Hi",
            "Hi!",
            "hi",
            "Hey",
            "hey there",
            "Hi there",
            "Hello there!",
            "Good morning",
            "Good afternoon",
            "Good evening",
            "Greetings",
            "Howdy",
            "Yo",
            "Hiya",
            "Hello, how are you?",
            "Hi, how are you?",
            "How are you?",
            "how are you doing?",
            "What's up?",
        ],
    ),
    "identity": (
        "I am llmctl's tiny offline demo model: a small Llama-style model trained in a few "
        "minutes on a CPU. I only know capitals, simple arithmetic and llmctl itself. For real "
        'answers, run a real model: llmctl generate -m hf/ORG/MODEL "..."',
        [
            "Who are you?",
            "who are you",
            "What are you?",
            "What model are you?",
            "Which model is this?",
            "Are you a real model?",
            "Tell me about yourself.",
            "What is your name?",
            "What can you do?",
            "Are you ChatGPT?",
            "Are you an AI?",
            "What do you know?",
        ],
    ),
    "thanks": (
        "You are welcome! Ask me about capitals, simple arithmetic or llmctl.",
        ["Thanks", "Thanks!", "Thank you", "Thank you!", "thank you very much", "thx", "Great, thanks"],
    ),
    "bye": (
        "Goodbye! Run llmctl generate whenever you need me.",
        ["Bye", "Goodbye", "bye!", "See you", "See you later!"],
    ),
    "what_is_llmctl": (
        "llmctl is a command-line tool that gives you one interface to local Hugging Face models "
        'and hosted LLMs. Try: llmctl generate "What is the capital of France?"',
        [
            "What is llmctl?",
            "what is llmctl",
            "What's llmctl?",
            "Tell me about llmctl.",
            "What does llmctl do?",
            "Explain llmctl.",
            "What is llmctl for?",
            "llmctl?",
        ],
    ),
    "real_model": (
        'Pass a model with -m, for example: llmctl generate -m hf/ORG/MODEL "your prompt". '
        "You can also define aliases in your config and set default_model. Run llmctl models "
        "list to see your models.",
        [
            "How do I use a real model?",
            "how do i use a real model",
            "How can I use a bigger model?",
            "How do I run a Hugging Face model?",
            "How do I use a different model?",
            "How do I change the model?",
            "How do I use another model with llmctl?",
            "Can I use a better model?",
            "How do I use a hosted LLM?",
            "How do I switch models?",
        ],
    ),
    "list_models": (
        "Run llmctl models list to see the models and aliases in your config.",
        [
            "How do I list models?",
            "Which models are available?",
            "What models can I use?",
            "How do I see my models?",
            "How do I list my aliases?",
            "llmctl models list?",
        ],
    ),
    "how_to_use": (
        'Run llmctl generate "your prompt". Without a model it uses me, the tiny demo model. '
        'For real answers use llmctl generate -m hf/ORG/MODEL "your prompt" or set '
        "default_model in your config.",
        [
            "How do I use llmctl?",
            "how do I use llmctl",
            "How do I use you?",
            "Help",
            "help",
            "Help me",
            "How does this work?",
            "How do I get started?",
            "What should I type?",
        ],
    ),
    "default_model": (
        "Set default_model in your llmctl config, for example to hf/ORG/MODEL or to one of your "
        "aliases. Then llmctl generate uses it without -m.",
        [
            "How do I set the default model?",
            "How do I change the default model?",
            "What is default_model?",
            "How do I stop using the demo model?",
            "How do I make a real model the default?",
        ],
    ),
}

# Things the demo model does not know, all answered with FALLBACK.
FALLBACK_FIXED = [
    "Tell me a joke.",
    "What time is it?",
    "Why is the sky blue?",
    "What is the meaning of life?",
    "Can you help me with my homework?",
    "Write a poem.",
    "Write me a story.",
    "What day is it today?",
    "Who won the World Cup?",
    "What is the weather today?",
    "Recommend a good book.",
    "How do I cook pasta?",
    "What should I eat for dinner?",
    "Who is the president?",
    "How tall is Mount Everest?",
    "How far is the Moon?",
    "What is 2 to the power of 10?",
    "What is the square root of 2?",
    "Solve x + 3 = 7.",
    "Tell me something interesting.",
    "asdf",
    "???",
    "...",
    "ok",
    "Explain quantum physics.",
    "Write some Python code.",
    "How do I fix my computer?",
    "What is love?",
    "Summarize the news.",
    "Sing a song.",
]
FALLBACK_PLACES = [
    "Atlantis",
    "Narnia",
    "Mars",
    "the Moon",
    "Gondor",
    "Wakanda",
    "Mordor",
    "Westeros",
    "Texas",
    "California",
    "Bavaria",
    "Scotland",
    "Ontario",
    "the Sun",
    "my town",
    "Europe",
    "Africa",
    "Asia",
    "the world",
    "Hogwarts",
]
FALLBACK_TOPICS = [
    "photosynthesis",
    "quantum computing",
    "a black hole",
    "Python",
    "the stock market",
    "machine learning",
    "gravity",
    "democracy",
    "the French Revolution",
    "DNA",
    "bitcoin",
    "the internet",
    "climate change",
    "music",
    "philosophy",
    "a neural network",
    "Rust",
    "chess",
    "the Roman Empire",
    "jazz",
    "electricity",
    "inflation",
    "a volcano",
    "football",
]
FALLBACK_PEOPLE = [
    "Albert Einstein",
    "Shakespeare",
    "Napoleon",
    "Marie Curie",
    "Mozart",
    "Elon Musk",
    "Cleopatra",
    "Isaac Newton",
    "Leonardo da Vinci",
    "Taylor Swift",
    "Gandhi",
    "Aristotle",
]
FALLBACK_TEMPLATES = [
    "What is {t}?",
    "Explain {t}.",
    "Tell me about {t}.",
    "How does {t} work?",
    "Write a poem about {t}.",
    "Write an essay on {t}.",
    "Who is {p}?",
    "Who was {p}?",
    "Tell me about {p}.",
    "When was {p} born?",
    "What is the capital of {x}?",
    "capital of {x}?",
    "What is the population of {x}?",
    "How big is {x}?",
    "What is the weather in {x}?",
    "Translate hello into {lang}.",
    "Say something in {lang}.",
    "How do I learn {t}?",
    "Is {t} good?",
    "Why is {t} important?",
]
FALLBACK_LANGS = ["French", "German", "Spanish", "Japanese", "Chinese", "Italian"]
FILLER_WORDS = [
    *(
        [
            "the",
            "a",
            "of",
            "and",
            "to",
            "in",
            "is",
            "you",
            "that",
            "it",
            "he",
            "was",
            "for",
            "on",
            "are",
            "as",
            "with",
            "his",
            "they",
            "at",
            "be",
            "this",
            "have",
            "from",
            "or",
            "one",
            "had",
        ]
    ),
    *(
        [
            "by",
            "word",
            "but",
            "not",
            "what",
            "all",
            "were",
            "we",
            "when",
            "your",
            "can",
            "said",
            "there",
            "use",
            "an",
            "each",
            "which",
            "she",
            "do",
            "how",
            "their",
            "if",
            "will",
        ]
    ),
    *(
        [
            "up",
            "other",
            "about",
            "out",
            "many",
            "then",
            "them",
            "these",
            "so",
            "some",
            "her",
            "would",
            "make",
            "like",
            "him",
            "into",
            "time",
            "has",
            "look",
            "two",
            "more",
        ]
    ),
    *(
        [
            "write",
            "go",
            "number",
            "no",
            "way",
            "could",
            "people",
            "my",
            "than",
            "first",
            "water",
            "been",
            "call",
            "who",
            "oil",
            "its",
            "now",
            "find",
            "long",
            "down",
            "day",
        ]
    ),
    *(
        [
            "did",
            "get",
            "come",
            "made",
            "may",
            "part",
            "banana",
            "purple",
            "train",
            "river",
            "window",
            "quickly",
            "happy",
            "blue",
            "seven",
            "cloud",
            "forest",
        ]
    ),
]

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer concisely.",
    "You are a friendly AI assistant.",
    "You are llmctl's demo model.",
    "Answer the user's question.",
    "You are a concise assistant.",
    "Be helpful and brief.",
]


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


def render_chat(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    """Python twin of CHAT_TEMPLATE (checked against apply_chat_template in main())."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content'].strip()}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


def train_tokenizer(texts: Iterator[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def encode_example(tokenizer: PreTrainedTokenizerBase, ex: Example) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 everywhere but the assistant answer and its <|im_end|>)."""
    prompt = tokenizer.encode(render_chat(ex.as_messages(), True), add_special_tokens=False)
    answer = tokenizer.encode(ex.answer + IM_END, add_special_tokens=False)
    return prompt + answer, [-100] * len(prompt) + answer


# ---------------------------------------------------------------------------------------------
# Model and training
# ---------------------------------------------------------------------------------------------


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    value = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(value, int), token
    return value


def build_model(tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=token_id(tokenizer, IM_END),
        pad_token_id=token_id(tokenizer, PAD),
        initializer_range=0.02,
    )
    return LlamaForCausalLM(config)


@dataclass
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    answers: list[str]


def make_batches(examples: list[Example], tokenizer: PreTrainedTokenizerBase, rng: random.Random) -> list[Batch]:
    """Group examples of similar length (less padding), right-pad, shuffle the batch order."""
    pad_id = tokenizer.pad_token_id
    assert isinstance(pad_id, int)
    encoded = [(*encode_example(tokenizer, ex), ex.answer) for ex in examples]
    batches: list[Batch] = []
    chunk = BATCH_SIZE * 16
    for start in range(0, len(encoded), chunk):
        group = sorted(encoded[start : start + chunk], key=lambda e: len(e[0]))
        for b in range(0, len(group), BATCH_SIZE):
            items = group[b : b + BATCH_SIZE]
            width = max(len(ids) for ids, _, _ in items)
            ids_t = torch.full((len(items), width), pad_id, dtype=torch.long)
            lab_t = torch.full((len(items), width), -100, dtype=torch.long)
            for row, (ids, labels, _) in enumerate(items):
                ids_t[row, : len(ids)] = torch.tensor(ids)
                lab_t[row, : len(labels)] = torch.tensor(labels)
            batches.append(Batch(ids_t, lab_t, [answer for _, _, answer in items]))
    rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int) -> float:
    if step < WARMUP_STEPS:
        return PEAK_LR * (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS)
    return PEAK_LR * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    steps: int,
    rng: random.Random,
    hook: Callable[[int], None] | None = None,
) -> None:
    """AdamW with warm-up and cosine decay; loss on the assistant answer (+ ``<|im_end|>``) only."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=PEAK_LR,
        betas=(0.9, 0.98),
    )
    model.train()
    batches: list[Batch] = []
    hard: dict[str, float] = {}
    start = time.perf_counter()
    running = 0.0
    for step in range(steps):
        if not batches:
            batches = make_batches(corpus_epoch(rng, hard), tokenizer, rng)
            hard = {}
        batch = batches.pop()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps)
        logits = model(input_ids=batch.input_ids).logits[:, :-1]
        targets = batch.labels[:, 1:]
        token_loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
        loss = token_loss.sum() / (targets != -100).sum()
        worst = token_loss.detach().max(dim=1).values.tolist()
        for answer, value in zip(batch.answers, worst, strict=True):
            hard[answer] = max(value, hard.get(answer, 0.0))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running = loss.item() if step == 0 else 0.9 * running + 0.1 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            n_hard = sum(v > HARD_LOSS for v in hard.values())
            print(
                f"step {step:4d}/{steps}  loss {running:.4f}  lr {lr_at(step, steps):.2e}  "
                f"hard {n_hard:4d}  {time.perf_counter() - start:6.1f}s",
                flush=True,
            )
        if hook is not None:
            hook(step + 1)


# ---------------------------------------------------------------------------------------------
# Save and evaluate
# ---------------------------------------------------------------------------------------------


def save(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin", "chat_template.jinja", "chat_template.json"):
        (out / stale).unlink(missing_ok=True)
    eos_id = token_id(tokenizer, IM_END)
    pad_id = token_id(tokenizer, PAD)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    model.config.architectures = ["LlamaForCausalLM"]
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


@dataclass
class Score:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0


def eval_set(rng: random.Random) -> list[Example]:
    """Every question type: each capital in every phrasing, each arithmetic fact, each canned question."""
    out: list[Example] = []

    def plain(kind: str, q: str, a: str) -> Example:
        system = rng.random() < 0.3
        turns = ((("system", rng.choice(SYSTEM_PROMPTS)),) if system else ()) + (("user", q),)
        return Example(kind, turns, a)

    for i in range(len(COUNTRIES)):
        for tpl in CAPITAL_TEMPLATES:
            out.append(plain("capital", *capital_question(i, rng, tpl)))
    for op, a, b in arith_facts():
        out.append(plain("arith", *arith_question(op, a, b, rng)))
    for kind, (answer, questions) in CANNED.items():
        out.extend(plain(kind, q, answer) for q in questions)
    out.extend(plain("fallback", fallback_question(rng), FALLBACK) for _ in range(100))
    return out


def generate_all(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    do_sample: bool,
    seed: int,
) -> list[str]:
    torch.manual_seed(seed)
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].answer), len(str(examples[i].messages))))
    replies: list[str] = [""] * len(examples)
    batch = 128
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        prompts = [
            tokenizer.apply_chat_template(examples[i].as_messages(), add_generation_prompt=True, tokenize=False)
            for i in idx
        ]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        longest = max(len(tokenizer.encode(examples[i].answer)) for i in idx)
        kwargs: dict[str, object] = {"do_sample": do_sample, "max_new_tokens": longest + 8}
        if do_sample:
            kwargs.update(temperature=0.7, top_p=0.9)
        else:
            kwargs.update(temperature=None, top_p=None)
        with torch.no_grad():
            gen = model.generate(**enc, **kwargs)  # type: ignore[operator]
        new = gen[:, enc["input_ids"].shape[1] :]
        for row, i in enumerate(idx):
            replies[i] = str(tokenizer.decode(new[row], skip_special_tokens=True)).strip()
    return replies


def evaluate(out: Path, rng: random.Random, sample_seeds: Sequence[int]) -> bool:
    """Reload the saved folder (as llmctl does) and score it. True when it is good enough."""
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    model.eval()
    examples = eval_set(rng)
    check_template(tokenizer)
    passed = True
    modes: list[tuple[str, bool, int, float]] = [("greedy", False, 0, GREEDY_MIN)]
    modes += [(f"sampled seed={s}", True, s, SAMPLED_MIN) for s in sample_seeds]
    for label, do_sample, seed, threshold in modes:
        t0 = time.perf_counter()
        replies = generate_all(model, tokenizer, examples, do_sample, seed)
        scores: dict[str, Score] = {}
        failures: list[str] = []
        for ex, reply in zip(examples, replies, strict=True):
            ok = reply == ex.answer
            scores.setdefault(ex.kind, Score()).add(ok)
            if not ok and len(failures) < 8:
                failures.append(f"    {ex.messages[-1][1]!r} -> {reply!r}")
        gated = Score()
        for kind in ("capital", "arith"):
            gated.right += scores[kind].right
            gated.total += scores[kind].total
        parts = "  ".join(f"{k} {s.right}/{s.total}" for k, s in sorted(scores.items()))
        print(
            f"[{label}] capitals+arithmetic {gated.right}/{gated.total} = {gated.accuracy:.2%} "
            f"(need {threshold:.1%})  {parts}  ({time.perf_counter() - t0:.1f}s)"
        )
        for line in failures:
            print(line)
        passed &= gated.accuracy >= threshold
    return passed


def check_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """The Jinja template, the Python twin used for training and the ids must all agree."""
    messages: list[Message] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    for msgs in (messages, messages[1:]):
        rendered = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        assert rendered == render_chat(msgs, True), rendered
        encoded = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)
        assert isinstance(encoded, Mapping)
        assert list(encoded["input_ids"]) == tokenizer.encode(str(rendered), add_special_tokens=False)
    text = "The capital of France is Paris."
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def file_report(out: Path) -> None:
    for path in sorted(out.iterdir()):
        print(f"  {path.name:28s} {path.stat().st_size:>10,d} bytes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: llmctl/demo_model)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default: {DEFAULT_STEPS})")
    parser.add_argument("--sample-seeds", type=int, default=5, help="sampled evaluation passes (default: 5)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)

    corpus_rng = random.Random(SEED + 1)
    tokenizer_texts = (
        render_chat(ex.as_messages(), True) + ex.answer + IM_END + "\n"
        for _ in range(3)
        for ex in corpus_epoch(corpus_rng)
    )
    tokenizer = train_tokenizer(tokenizer_texts)
    check_template(tokenizer)
    print(f"tokenizer: {len(tokenizer)} tokens  ({time.perf_counter() - t_start:.1f}s)")

    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,d} parameters")
    t_train = time.perf_counter()
    train(model, tokenizer, args.steps, rng)
    train_s = time.perf_counter() - t_train

    save(model, tokenizer, args.out)
    print(f"saved to {args.out}")
    file_report(args.out)

    t_eval = time.perf_counter()
    ok = evaluate(args.out, random.Random(SEED + 2), [SEED + 10 + i for i in range(args.sample_seeds)])
    eval_s = time.perf_counter() - t_eval
    total_s = time.perf_counter() - t_start
    print(f"time: train {train_s:.1f}s  eval {eval_s:.1f}s  total {total_s:.1f}s")
    print("PASS" if ok else "FAIL: accuracy below threshold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
