"""The library behind the ``exman`` command: one function per subcommand
(:mod:`exman.commands.manage`), and the handlers that print what they did.
"""
