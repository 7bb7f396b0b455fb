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

    .venv/bin/python -m scripts.demo_model                       # writes llmctl/demo_model/
    .venv/bin/python -m scripts.demo_model --out /tmp/demo --steps 500   # quick smoke run

(``scripts/train_demo_model.py`` runs the same.) The parts: ``corpus_data`` (the tables),
``corpus`` (questions and epochs), ``template`` (ChatML, tokenizer), ``train``, ``evaluate``.

The result is a toy: it knows what is in the corpus below and nothing else.
"""
