"""Command-line commands of the catalog domain."""

commands: list = []
