"""Pure wire-format conversions between the chat, Anthropic Messages and Responses shapes (no Flask, no DB)."""
