"""``python -m stream.cli``."""
from stream.cli import main

main()
