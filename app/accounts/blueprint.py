"""The accounts blueprint. Its routes live in app.accounts.views (setup, login, logout, language),
app.accounts.users_views (the users page) and app.accounts.account_views (the user's own account)."""
from flask import Blueprint

bp = Blueprint("accounts", __name__)
