"""HTML/HTMX routes of the settings domain."""
from flask import Blueprint

bp = Blueprint("settings", __name__)
