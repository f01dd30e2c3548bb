"""``python -m autograder.sandbox FD``: the fork server (``sandbox.server``); its setup comes
first on the socket (``protocol.setup``), never on the command line."""

from autograder.sandbox.server import main

main()
