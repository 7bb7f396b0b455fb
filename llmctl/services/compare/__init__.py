"""``llmctl compare``: the same prompts on several models, measured and checked side by side.

``run`` makes the calls (``run_one`` is the one call path: budget, run, record), ``cases`` reads a
suite, ``checks`` grades answers, ``report`` sums up and writes JSON, CSV and Markdown.
"""
