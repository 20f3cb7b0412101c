"""``python -m sandbox.telegram``: the simulator as a standalone server."""

from sandbox.telegram.cli import main

main()
