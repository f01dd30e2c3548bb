"""Where student code runs, as a package: one module per side, one for what they share.

- ``protocol``: the messages between grader and fork server, and their limits (both sides);
- ``confine``: Landlock, seccomp, the network namespace, dropping root, resource limits;
- ``server``: the fork server, the supervisor and the student process
  (``python -m autograder.sandbox``);
- ``client``: the grader's side: ``Zygote``, ``StreamReader``, job slots.

This file imports nothing: the fork server starts from it.
"""
