"""What a web page's client gets at the door (processor.server): origins, subprotocols, the 401 challenge and
``GET /live/session``, which answers as the upgrade would, because a browser hides why an upgrade was refused."""

import json

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from processor.directus import Outcome

from .fakes import FakeDirectus
from .test_server import answer, make_server, request

PAGE = "https://live.example.com"
COOKIE = "directus_session_token=abc"


async def test_an_allow_list_entry_written_loosely_accepts_the_browser(metrics):
    """The "done when" case: https://Live.Example.com/ in the list, Origin: https://live.example.com sent."""
    directus = FakeDirectus()
    server = make_server(metrics, directus, allowed_origins="https://Live.Example.com/")
    conn, response = await answer(server, request("/live", Origin=PAGE, Cookie=COOKIE))
    assert response is None and conn.processor_user == "u1"
    assert directus.calls == ["/users/me"]


async def test_null_is_refused_even_under_the_wildcard(metrics):
    directus = FakeDirectus()
    server = make_server(metrics, directus, allowed_origins="*")
    _, response = await answer(server, request("/live", Origin="null", Cookie=COOKIE))
    assert response.status_code == 403 and directus.calls == []


async def test_every_origin_header_must_be_allowed(metrics):
    headers = Headers()
    headers["Origin"] = PAGE
    headers["Origin"] = "https://evil.example"
    headers["Cookie"] = COOKIE
    directus = FakeDirectus()
    _, response = await answer(make_server(metrics, directus, allowed_origins=PAGE), Request("/live", headers))
    assert response.status_code == 403 and directus.calls == []


@pytest.mark.parametrize("offer", ["live.v1", "live.v1, chat", " ,graphql-ws"])
async def test_a_subprotocol_offer_is_refused_before_the_cms_is_asked(metrics, offer):
    directus = FakeDirectus()
    server = make_server(metrics, directus, allowed_origins=PAGE)
    _, response = await answer(server, request("/live", Origin=PAGE, Cookie=COOKIE, Sec_WebSocket_Protocol=offer))
    assert response.status_code == 400 and b"subprotocol" in response.body
    assert directus.calls == []
    assert metrics.registry.get_sample_value("processor_auth_failures_total", {"reason": "subprotocol"}) == 1


async def test_an_empty_subprotocol_header_offers_nothing(metrics):
    server = make_server(metrics, FakeDirectus())
    _, response = await answer(server, request("/live", Cookie=COOKIE, Sec_WebSocket_Protocol=" , "))
    assert response is None


async def test_a_foreign_page_offering_a_subprotocol_is_told_about_its_origin(metrics):
    server = make_server(metrics, FakeDirectus(), allowed_origins=PAGE)
    _, response = await answer(server, request("/live", Origin="https://evil.example", Sec_WebSocket_Protocol="x"))
    assert response.status_code == 403


@pytest.mark.parametrize("cookie, user", [(None, Outcome.OK), (COOKIE, Outcome.UNAUTHORIZED)])
async def test_every_401_carries_a_challenge(metrics, cookie, user):
    server = make_server(metrics, FakeDirectus(user=user))
    _, response = await answer(server, request("/live", **({"Cookie": cookie} if cookie else {})))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Cookie realm="live"'


async def test_other_refusals_carry_no_challenge(metrics):
    server = make_server(metrics, FakeDirectus(user=Outcome.UNAVAILABLE))
    _, response = await answer(server, request("/live", Cookie=COOKIE))
    assert response.status_code == 503 and "WWW-Authenticate" not in response.headers


# -- GET /live/session -------------------------------------------------------------------------------------

async def session(metrics, *, user=Outcome.OK, origin=PAGE, cookie=COOKIE, allowed=PAGE):
    directus = FakeDirectus(user=user)
    server = make_server(metrics, directus, allowed_origins=allowed)
    headers = {k: v for k, v in (("Origin", origin), ("Cookie", cookie)) if v is not None}
    _, response = await answer(server, request("/live/session", **headers))
    return response, json.loads(response.body), directus.calls


@pytest.mark.parametrize("user, cookie, status, state", [
    (Outcome.OK, COOKIE, 200, "signed_in"),
    (Outcome.OK, None, 401, "sign_in"),
    (Outcome.UNAUTHORIZED, COOKIE, 401, "sign_in"),
    (Outcome.UNAVAILABLE, COOKIE, 503, "unavailable"),
])
async def test_the_session_check_answers_as_the_upgrade_would_and_a_page_may_read_it(metrics, user, cookie, status,
                                                                                     state):
    response, body, calls = await session(metrics, user=user, cookie=cookie)
    assert response.status_code == status and body["status"] == state and body["message"]
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Vary"] == "Origin" and response.headers["Cache-Control"] == "no-store"
    assert ("WWW-Authenticate" in response.headers) == (status == 401)
    assert calls == ([] if cookie is None else ["/users/me"])

    upgrade = make_server(metrics, FakeDirectus(user=user), allowed_origins=PAGE)
    headers = {"Origin": PAGE, **({"Cookie": cookie} if cookie else {})}
    _, refused = await answer(upgrade, request("/live", **headers))
    assert (refused.status_code if refused else 200) == status  # the same verdict as the upgrade's


async def test_a_foreign_page_may_not_read_the_session_check_and_the_cms_is_not_asked(metrics):
    response, body, calls = await session(metrics, origin="https://evil.example")
    assert response.status_code == 403 and body["status"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers and calls == []


async def test_the_wildcard_lets_any_page_read_the_session_check(metrics):
    response, _, _ = await session(metrics, origin="https://elsewhere.example", allowed="*")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://elsewhere.example"


async def test_a_client_without_origin_gets_no_cors_headers(metrics):
    response, body, _ = await session(metrics, origin=None)
    assert response.status_code == 200 and body["status"] == "signed_in"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "HEAD"])
async def test_the_session_check_is_get_only_and_other_methods_never_reach_the_cms(metrics, method):
    directus = FakeDirectus()
    server = make_server(metrics, directus, allowed_origins=PAGE)
    headers = Headers()
    headers["Origin"] = PAGE
    headers["Cookie"] = COOKIE
    _, response = await answer(server, Request("/live/session", headers, method=method))
    assert response.status_code == 405 and response.headers["Allow"] == "GET" and directus.calls == []


async def test_a_retry_hint_of_the_upgrade_reaches_the_page(metrics, monkeypatch):
    server = make_server(metrics, FakeDirectus(), allowed_origins=PAGE)

    async def busy(connection, request):
        import http

        from processor.server import _text

        response = _text(http.HTTPStatus.SERVICE_UNAVAILABLE, "the CMS is busy")
        response.headers["Retry-After"] = "3"
        return response

    monkeypatch.setattr(server, "_authenticate", busy)
    _, response = await answer(server, request("/live/session", Origin=PAGE, Cookie=COOKIE))
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
