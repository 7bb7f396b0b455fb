"""The terminal edge: typer commands and rich output live here and only here."""
