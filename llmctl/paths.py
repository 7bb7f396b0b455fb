"""Where llmctl keeps its config file and its data (ledger, chat history)."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_ENV = "LLMCTL_CONFIG"
HOME_ENV = "LLMCTL_HOME"


def config_path(explicit: Path | None = None) -> Path:
    """``--config PATH``, else ``$LLMCTL_CONFIG``, else the platform's user config dir."""
    if explicit is not None:
        return explicit.expanduser()
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("llmctl", appauthor=False)) / "config.toml"


def data_home() -> Path:
    """``$LLMCTL_HOME``, else the platform's user data dir. Not created here."""
    from_env = os.environ.get(HOME_ENV)
    if from_env:
        return Path(from_env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("llmctl", appauthor=False))


def demo_model_dir() -> Path:
    """The built-in demo model shipped inside the package."""
    return Path(__file__).parent / "demo_model"


def example_config_path() -> Path:
    """``config.example.toml``: every key with its default, shipped inside the package."""
    return Path(__file__).parent / "config.example.toml"
