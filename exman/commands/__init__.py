"""The library behind the ``exman`` command: one function per subcommand
(:mod:`exman.commands.manage`), and the ``cli_<group>`` modules that add each
subcommand's parser and print what its function did.
"""
