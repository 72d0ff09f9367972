"""An owner created on the command line logs in through the real browser."""
import pytest

pytestmark = pytest.mark.browser


def test_owner_logs_in_and_sees_keys_page(logged_in_page, admin_server):
    page = logged_in_page
    assert page.url.endswith("/keys")
    assert page.get_by_role("heading", name="API keys").is_visible()
