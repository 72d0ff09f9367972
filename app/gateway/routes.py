"""The public client API (OpenAI- and Anthropic-compatible). Routes stay thin; see pipeline.py."""
from flask import Blueprint

bp = Blueprint("gateway", __name__)
csrf_exempt = True
