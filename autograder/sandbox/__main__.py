"""``python -m autograder.sandbox FD HIDDEN_JSON``: the fork server (``sandbox.server``)."""

from autograder.sandbox.server import main

main()
