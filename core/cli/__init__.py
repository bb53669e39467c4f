"""CLI subcommands. Each module here defines ``register(subparsers)``.

A module adds one subcommand: ``register`` calls ``subparsers.add_parser(...)`` and sets
``func=<callable taking the parsed args and returning an exit code>`` with
``set_defaults``. Modules are discovered automatically; heavy imports (torch, librosa)
belong inside the command function, not at module top, so ``--help`` stays fast.
"""
