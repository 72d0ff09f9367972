"""Command-line commands of the ops domain."""

commands: list = []
