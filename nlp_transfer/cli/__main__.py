"""`python -m nlp_transfer.cli ...`, the same as `python -m nlp_transfer ...`."""

from nlp_transfer.cli import app

app()
