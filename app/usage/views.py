"""HTML/HTMX routes of the usage domain."""
from flask import Blueprint

bp = Blueprint("usage", __name__)
