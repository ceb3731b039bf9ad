"""The `nlp-transfer` command and `python -m nlp_transfer`: tcmalloc first where the system has it (it must be in
place before the process starts; see core/allocator.py), then the command line."""

from nlp_transfer.core.allocator import reexecute_with_tcmalloc


def main() -> None:
    reexecute_with_tcmalloc()
    from nlp_transfer.cli import app  # after the re-execution: the heavy imports happen once

    app()
