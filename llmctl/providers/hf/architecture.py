"""A model's parameters from its ``config.json`` alone: the architecture built on the meta device.

For a folder with a config and no weights (or weights whose headers cannot be read), this
gives the exact parameter count and each tensor's shape without allocating a byte of them,
so ``models info`` can size Llama 3 70B on a laptop.
"""

from __future__ import annotations

from pathlib import Path


def parameter_shapes(folder: Path) -> dict[str, list[int]] | None:
    """Parameter name -> shape for the model ``folder/config.json`` describes; None when transformers
    cannot build that architecture (an unknown ``model_type``, or code the model would have to run)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a legacy config value warns here; the count is what matters
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        # The meta device allocates no storage: building a 70B model this way takes well under a second.
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except (ValueError, KeyError, OSError, TypeError, ImportError):
        return None
    # named_parameters() lists a tied weight (Gemma's embedding and output head) once, as it is stored.
    return {name: list(parameter.shape) for name, parameter in model.named_parameters()}
