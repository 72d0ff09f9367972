"""app.htmx.render: the fragment for htmx, the whole page for a browser and for an htmx history restore."""
import pytest
from jinja2 import ChoiceLoader, DictLoader

from app.htmx import INVALID_FORM, render

TEMPLATES = {"t/page.html": "<html>{% include 't/part.html' %}</html>", "t/part.html": "<p>{{ word }}</p>"}


@pytest.fixture
def answer(app):
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.jinja_env.loader])

    def answer(headers: dict, status: int = 200):
        with app.test_request_context("/", headers=headers):
            return render("t/page.html", "t/part.html", status, word="hello")

    return answer


@pytest.mark.parametrize("headers,body", [
    ({}, "<html><p>hello</p></html>"),
    ({"HX-Request": "true"}, "<p>hello</p>"),
    ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, "<html><p>hello</p></html>"),
])
def test_fragment_or_page_both_varying_on_hx_request(answer, headers, body):
    response = answer(headers)
    assert response.get_data(as_text=True) == body
    assert response.status_code == 200
    assert "HX-Request" in response.vary


def test_an_invalid_form_answers_422_which_base_html_tells_htmx_to_swap(answer, app):
    assert answer({"HX-Request": "true"}, INVALID_FORM).status_code == 422
    base, _, _ = app.jinja_env.loader.get_source(app.jinja_env, "base.html")
    assert '{"code": "422", "swap": true, "error": false}' in base
