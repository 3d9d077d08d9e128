"""``python -m traderseg`` runs the CLI."""

from traderseg.cli import main

main()
