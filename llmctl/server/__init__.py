"""``llmctl serve``: the HTTP edge (OpenAI and Anthropic wires) over the same services the CLI uses."""
