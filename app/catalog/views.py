"""HTML/HTMX routes of the catalog domain."""
from flask import Blueprint

bp = Blueprint("catalog", __name__)
