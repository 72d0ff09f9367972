"""Command-line commands of the keys domain."""

commands: list = []
