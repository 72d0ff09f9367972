"""Command-line commands of the accounts domain."""

commands: list = []
