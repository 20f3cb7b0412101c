"""``python -m sandbox.slack``: the simulator as a standalone server."""

from sandbox.slack.cli import main

main()
