"""`python -m nlp_transfer ...` (and `accelerate launch -m nlp_transfer run RECIPE`) run the CLI."""

from nlp_transfer.entry import main

main()
