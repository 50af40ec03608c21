"""Subcommands of the dsmtheory CLI, one module each."""
