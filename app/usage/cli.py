"""Command-line commands of the usage domain."""

commands: list = []
