"""The command line: one Typer app (``app.py``), a module per command group."""
