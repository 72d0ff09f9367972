"""HTML/HTMX routes of the docs domain."""
from flask import Blueprint

bp = Blueprint("docs", __name__)
