"""Train llmctl's built-in demo model: ``python scripts/train_demo_model.py`` runs ``python -m scripts.demo_model``.

The code lives in the ``scripts/demo_model/`` package (corpus data, corpus, template, train, evaluate).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, where the scripts package is

from scripts.demo_model.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
