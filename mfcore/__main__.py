"""``python -m mfcore`` runs the command line."""
from .cli import main

main()
