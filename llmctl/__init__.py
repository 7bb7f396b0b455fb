"""llmctl: one command line for every LLM you use, local or hosted."""

__version__ = "0.1.0"
