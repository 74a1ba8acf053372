"""The identity blueprint through Flask's test client: _kx links, consent, personas, forget me.

Klevu is not called here: ``storefront.klevu.segments.resolver`` is replaced by a recorder that
notes which identity each ``current_segments()`` / ``forget_segments()`` call saw.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path

import pytest
from flask import Blueprint, Flask, render_template, render_template_string
from hypothesis import HealthCheck, given, settings, strategies as st
from markupsafe import escape

from storefront import (
    config as storefront_config,
    identity as identity_module,
    klaviyo,
    personas,
    security,
)
from storefront.identity import (
    CONSENT_COOKIE,
    PENDING_KX_COOKIE,
    Identity,
    current_identity,
    identity_from_cookies,
    load_personas,
    safe_next,
)
from storefront.klaviyo import KLA_ID_COOKIE, encode_kla_id
from storefront.simulator import account

ROOT = Path(__file__).resolve().parents[2]
COMPANY = account.COMPANY_ID  # the demo personas' Klaviyo company
OTHER_COMPANY = "W37mBW"
CID = "YWUyOGU5ZjMtMzI2MS00ZTQ5LTgzNmEtOGNmNDkyOWQ3MTMx"
XID = "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=." + COMPANY
MAYA = next(p for p in load_personas()["personas"] if p["key"] == "maya")
MAYA_XID = f"{MAYA['identifier']}.{COMPANY}"
TWO_YEARS = str(730 * 24 * 3600)
ONE_YEAR = str(365 * 24 * 3600)
PAGE = """{% extends "base.html" %}{% block content %}<p>page</p>{% endblock %}"""


def make_app(**overrides) -> Flask:
    """The identity and persona blueprints in a bare app with the repo's templates.

    Two stub shop pages stand for "any page"; other links in ``base.html`` (cart, segments
    JSON, ...) build as placeholders.
    """
    app = Flask(
        "storefront", template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static")
    )
    app.config.update(storefront_config.from_env(account.shop_environment("http://127.0.0.1:1")))
    app.config.update(TESTING=True, SECRET_KEY="test", **overrides)
    security.init_app(app)
    app.register_blueprint(identity_module.bp)
    app.register_blueprint(personas.bp)
    shop = Blueprint("shop", __name__)
    shop.add_url_rule("/", "home", lambda: render_template_string(PAGE))
    shop.add_url_rule("/c/<slug>", "category", lambda slug: render_template_string(PAGE))
    app.register_blueprint(shop)
    app.url_build_error_handlers.append(lambda error, endpoint, values: f"/stub/{endpoint}")
    app.context_processor(lambda: {"nav_categories": [], "cart_count": 0})
    return app


@pytest.fixture
def segment_calls(monkeypatch):
    calls: list[tuple[str, Identity]] = []
    monkeypatch.setattr(
        identity_module,
        "current_segments",
        lambda visitor: calls.append(("resolve", current_identity())),
    )
    monkeypatch.setattr(
        identity_module,
        "forget_segments",
        lambda visitor: calls.append(("forget", current_identity())),
    )
    return calls


@pytest.fixture
def app(segment_calls):
    return make_app()


@pytest.fixture
def client(app):
    """A browser on the shop's own pages: it labels its posts ``Sec-Fetch-Site: same-origin``."""
    client = app.test_client()
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    return client


def set_cookies(response) -> dict[str, tuple[str, dict[str, str]]]:
    """``Set-Cookie`` headers as {name: (value, {attribute: value})}, attribute names lowered."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        pair, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = pair.partition("=")
        cookies[name] = (
            value,
            {k.lower(): v for k, _, v in (a.partition("=") for a in attributes)},
        )
    return cookies


def assert_klaviyo_cookie(response, exchange_id: str, cid: str | None) -> str:
    value, attributes = set_cookies(response)[KLA_ID_COOKIE]
    assert klaviyo.decode_kla_id(value).exchange_id == exchange_id
    if cid:
        assert value == encode_kla_id(exchange_id, cid)
    assert attributes.keys() == {"expires", "max-age", "path", "samesite"}  # no HttpOnly/Domain
    assert (attributes["max-age"], attributes["path"], attributes["samesite"]) == (
        TWO_YEARS,
        "/",
        "Lax",
    )
    return value


def assert_expired(response, name: str) -> None:
    value, attributes = set_cookies(response)[name]
    assert (value, attributes["max-age"], attributes["path"]) == ("", "0", "/")


def badge(client, path="/") -> str:
    html = client.get(path).get_data(as_text=True)
    start = html.index('data-testid="identity-badge"')
    return html[start : html.index("</div>", start)]


# -- identity from cookies (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    "consent, required, off, expected",
    [
        (None, True, False, None),
        ("granted", True, False, XID),
        ("denied", True, False, None),
        ("garbage", True, False, None),
        (None, False, False, XID),
        ("granted", False, False, XID),
        ("denied", False, False, None),
        ("granted", True, True, None),
    ],
)
def test_exchange_id_only_with_consent_and_tracking_on(consent, required, off, expected):
    cookies = {KLA_ID_COOKIE: encode_kla_id(XID, CID)}
    if consent:
        cookies[CONSENT_COOKIE] = consent
    if off:
        cookies[klaviyo.KLA_OFF_COOKIE] = "true"
    identity = identity_from_cookies(cookies, company_id=COMPANY, consent_required=required)
    assert identity.exchange_id == expected
    assert identity.personalisation_allowed is (expected is not None)
    assert identity.cid == CID
    assert identity.consent == (consent if consent in ("granted", "denied") else None)


def test_persona_is_recognised_from_its_exchange_id():
    cookies = {KLA_ID_COOKIE: encode_kla_id(MAYA_XID, CID), CONSENT_COOKIE: "granted"}
    assert identity_from_cookies(cookies, company_id=COMPANY, consent_required=True).persona == MAYA
    assert (
        identity_from_cookies(cookies, company_id=OTHER_COMPANY, consent_required=True).persona
        is None
    )


def test_identity_is_computed_once_per_request(app):
    with app.test_request_context("/"):
        assert current_identity() is current_identity()


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/c/tents?color=red", "/c/tents?color=red"),
        ("/demo/personas#privacy", "/demo/personas#privacy"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("/ok\\..\\", "/"),
        ("", "/"),
        (None, "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_safe_next_only_allows_same_site_paths(target, expected):
    assert safe_next(target, "/") == expected


# -- _kx email links -------------------------------------------------------------------------


def test_kx_identifies_keeps_cid_and_redirects_without_it(client, segment_calls):
    client.set_cookie(CONSENT_COOKIE, "granted")
    client.set_cookie(KLA_ID_COOKIE, base64.b64encode(f'{{"cid":"{CID}"}}'.encode()).decode())
    response = client.get("/c/tents?color=red&_kx=" + XID.replace("=", "%3D") + "&size=m")
    assert response.status_code == 302
    assert response.headers["Location"] == "/c/tents?color=red&size=m"
    assert_klaviyo_cookie(response, XID, CID)
    # Segments were re-resolved on this very request, for the new identity.
    assert [(kind, seen.exchange_id) for kind, seen in segment_calls] == [("resolve", XID)]
    assert client.get("/c/tents?color=red&size=m").status_code == 200


def test_kx_gives_a_new_visitor_a_fresh_cid(client):
    client.set_cookie(CONSENT_COOKIE, "granted")
    response = client.get("/?_kx=" + XID)
    value = assert_klaviyo_cookie(response, XID, None)
    cid = klaviyo.decode_kla_id(value).cid
    assert cid is not None
    uuid.UUID(base64.b64decode(cid).decode())
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "query, location",
    [
        ("_kx=" + XID, "/c/tents"),
        ("a=1&_kx=" + XID + "&b=2&_kx=x&c=3", "/c/tents?a=1&b=2&c=3"),
        ("%5Fkx=" + XID + "&q=a%20b+c&p=%2F%3D&flag", "/c/tents?q=a%20b+c&p=%2F%3D&flag"),
        ("q=%C3%A9t%C3%A9&_kx=" + XID.replace("=", "%253D"), "/c/tents?q=%C3%A9t%C3%A9"),
    ],
)
def test_kx_is_stripped_and_other_parameters_kept_verbatim(client, query, location):
    client.set_cookie(CONSENT_COOKIE, "granted")
    response = client.get("/c/tents?" + query)
    assert response.headers["Location"] == location
    assert_klaviyo_cookie(response, XID, None)


@pytest.mark.parametrize(
    "kx",
    [
        f"{MAYA['identifier']}.{OTHER_COMPANY}",  # another Klaviyo account's link
        "not-an-exchange-id",
        "",
        "a.b.c",
        "<script>.DemoCo",
        "x" * 500 + ".DemoCo",
    ],
)
def test_foreign_or_malformed_kx_is_ignored_but_stripped(client, segment_calls, caplog, kx):
    caplog.set_level(logging.DEBUG)
    client.set_cookie(CONSENT_COOKIE, "granted")
    response = client.get("/c/tents?_kx=" + kx + "&page=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/c/tents?page=2"
    assert KLA_ID_COOKIE not in set_cookies(response)
    assert segment_calls == []
    assert all(kx not in record.getMessage() for record in caplog.records if kx)


def test_kx_on_a_path_starting_with_two_slashes_stays_on_this_site(client):
    response = client.get(
        "/", environ_overrides={"PATH_INFO": "//evil.example/x", "QUERY_STRING": "_kx=" + XID}
    )
    assert response.headers["Location"] == "/evil.example/x"


def test_kx_only_on_get(client):
    client.set_cookie(CONSENT_COOKIE, "granted")
    response = client.post("/consent?_kx=" + XID, data={"choice": "accept", "next": "/"})
    assert KLA_ID_COOKIE not in set_cookies(response)


def test_kx_without_consent_requirement_identifies_at_once(segment_calls):
    response = make_app(CONSENT_REQUIRED=False).test_client().get("/?_kx=" + XID)
    assert_klaviyo_cookie(response, XID, None)
    assert CONSENT_COOKIE not in set_cookies(response)
    assert segment_calls[0][1].exchange_id == XID


def test_kx_before_consent_waits_and_applies_on_accept(client, segment_calls):
    response = client.get("/c/tents?_kx=" + XID)
    assert response.headers["Location"] == "/c/tents"
    assert KLA_ID_COOKIE not in set_cookies(response)
    _value, attributes = set_cookies(response)[PENDING_KX_COOKIE]
    assert (attributes["max-age"], attributes["path"], "httponly" in attributes) == (
        "1800",
        "/",
        True,
    )
    assert segment_calls == []
    assert 'data-consent="pending"' in badge(client, "/c/tents")

    response = client.post("/consent", data={"choice": "accept", "next": "/c/tents"})
    assert response.headers["Location"] == "/c/tents"
    assert_klaviyo_cookie(response, XID, None)
    assert_expired(response, PENDING_KX_COOKIE)
    assert [(kind, seen.exchange_id) for kind, seen in segment_calls] == [("resolve", XID)]
    assert 'data-consent="granted"' in badge(client)


def test_kx_before_consent_is_dropped_on_decline(client, segment_calls):
    client.get("/?_kx=" + XID)
    response = client.post("/consent", data={"choice": "decline", "next": "/"})
    assert_expired(response, PENDING_KX_COOKIE)
    assert KLA_ID_COOKIE not in set_cookies(response)
    assert client.get_cookie(PENDING_KX_COOKIE) is None


def test_kx_after_decline_is_not_kept(client, segment_calls):
    client.set_cookie(CONSENT_COOKIE, "denied")
    response = client.get("/?_kx=" + XID)
    assert response.headers["Location"] == "/"
    assert set_cookies(response) == {}
    assert segment_calls == []


def test_kx_is_ignored_when_klaviyo_tracking_is_off(client, segment_calls):
    client.set_cookie(CONSENT_COOKIE, "granted")
    client.set_cookie(klaviyo.KLA_OFF_COOKIE, "true")
    response = client.get("/?_kx=" + XID)
    assert response.headers["Location"] == "/"
    assert set_cookies(response) == {}
    assert segment_calls == []


# -- consent ---------------------------------------------------------------------------------


def test_accept_stores_consent_and_uses_the_existing_cookie(client):
    client.set_cookie(KLA_ID_COOKIE, encode_kla_id(MAYA_XID, CID))
    assert "Anonymous" in badge(client)
    response = client.post("/consent", data={"choice": "accept", "next": "/c/tents?x=1"})
    assert response.headers["Location"] == "/c/tents?x=1"
    value, attributes = set_cookies(response)[CONSENT_COOKIE]
    assert value == "granted"
    assert (attributes["max-age"], attributes["path"], attributes["samesite"]) == (
        ONE_YEAR,
        "/",
        "Lax",
    )
    assert KLA_ID_COOKIE not in set_cookies(response)  # nothing to write: Klaviyo's cookie stays
    assert "Maya" in badge(client)


@pytest.mark.parametrize("prior", [None, "granted"])
def test_decline_or_withdraw_expires_klaviyo_cookie_and_forgets_segments(
    client, segment_calls, prior
):
    client.set_cookie(KLA_ID_COOKIE, encode_kla_id(MAYA_XID, CID))
    if prior:
        client.set_cookie(CONSENT_COOKIE, prior)
    response = client.post("/consent", data={"choice": "decline", "next": "/"})
    assert set_cookies(response)[CONSENT_COOKIE][0] == "denied"
    assert_expired(response, KLA_ID_COOKIE)
    # Forgotten while the request still saw the visitor who is being forgotten.
    assert [(kind, seen.exchange_id) for kind, seen in segment_calls] == [
        ("forget", MAYA_XID if prior else None)
    ]
    assert client.get_cookie(KLA_ID_COOKIE) is None
    assert 'data-consent="denied"' in badge(client)


@pytest.mark.parametrize("form", [{}, {"choice": "maybe"}, {"choice": ""}])
def test_consent_needs_a_choice(client, form):
    assert client.post("/consent", data=form).status_code == 400


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_consent_never_redirects_off_site(client, next_url):
    response = client.post("/consent", data={"choice": "accept", "next": next_url})
    assert response.headers["Location"] == "/"


def test_cross_site_posts_are_refused(client):
    response = client.post(
        "/consent", data={"choice": "accept"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    assert set_cookies(response) == {}


def test_banner_shows_until_a_choice_is_made(client):
    html = client.get("/c/tents?page=2").get_data(as_text=True)
    assert 'data-testid="consent-accept"' in html and 'data-testid="consent-decline"' in html
    assert 'name="next" value="/c/tents?page=2"' in html
    client.post("/consent", data={"choice": "decline"})
    assert 'data-testid="consent-banner"' not in client.get("/").get_data(as_text=True)


def test_no_banner_when_consent_is_not_required(segment_calls):
    html = make_app(CONSENT_REQUIRED=False).test_client().get("/").get_data(as_text=True)
    assert 'data-testid="consent-banner"' not in html
    assert 'data-consent="assumed"' in html


# -- live Klaviyo onsite script --------------------------------------------------------------


@pytest.mark.parametrize(
    "onsite, consent, shown",
    [
        (True, "granted", True),
        (True, None, False),
        (True, "denied", False),
        (False, "granted", False),
    ],
)
def test_onsite_script_only_when_live_and_consented(segment_calls, onsite, consent, shown):
    app = make_app(KLAVIYO_ONSITE=onsite, KLAVIYO_COMPANY_ID=OTHER_COMPANY)
    cookie = f"{CONSENT_COOKIE}={consent}" if consent else ""
    with app.test_request_context("/", headers={"Cookie": cookie}):
        html = render_template("partials/klaviyo_onsite.html")
    script = (
        '<script async src="https://static.klaviyo.com/onsite/js/klaviyo.js'
        f'?company_id={OTHER_COMPANY}" nonce="'
    )
    assert (script in html) is shown
    # The page's CSP lets Klaviyo's host in exactly when the page loads its script.
    browser = app.test_client()
    if consent:
        browser.set_cookie(CONSENT_COOKIE, consent)
    page = browser.get("/")
    script_src = next(
        d
        for d in page.headers["Content-Security-Policy"].split("; ")
        if d.startswith("script-src ")
    )
    assert ("https://static.klaviyo.com" in script_src.split()) is shown


def test_live_klaviyo_handles_kx_itself(segment_calls):
    client = make_app(KLAVIYO_ONSITE=True, KLAVIYO_COMPANY_ID=OTHER_COMPANY).test_client()
    client.set_cookie(CONSENT_COOKIE, "granted")
    response = client.get(f"/?_kx={MAYA['identifier']}.{OTHER_COMPANY}")
    assert response.status_code == 200
    assert set_cookies(response) == {}


# -- demo personas, forget me ----------------------------------------------------------------


def test_personas_page_lists_personas_with_their_segments(client):
    html = client.get("/demo/personas").get_data(as_text=True)
    data = load_personas()
    assert len(data["personas"]) >= 4
    for persona in data["personas"]:
        assert f'data-testid="persona-{persona["key"]}"' in html
        assert str(escape(persona["story"])) in html
        for segment in persona["segments"]:
            assert str(escape(data["segments"][segment])) in html
    assert 'data-testid="forget-me"' in html
    assert "also accepts this demo" in html
    assert 'data-testid="current-visitor">Anonymous' in html


def test_choosing_a_persona_writes_klaviyos_cookie_and_counts_as_consent(client, segment_calls):
    client.set_cookie(KLA_ID_COOKIE, base64.b64encode(f'{{"cid":"{CID}"}}'.encode()).decode())
    response = client.post("/demo/persona", data={"persona": "maya", "next": "/"})
    assert response.headers["Location"] == "/"
    assert_klaviyo_cookie(response, MAYA_XID, CID)
    assert set_cookies(response)[CONSENT_COOKIE][0] == "granted"
    assert [(kind, seen.persona["key"]) for kind, seen in segment_calls] == [("resolve", "maya")]
    assert 'data-persona="maya"' in badge(client)
    html = client.get("/demo/personas").get_data(as_text=True)
    assert f'data-testid="current-visitor">{MAYA["name"]}' in html and MAYA_XID in html


def test_switching_persona_keeps_the_cid(client):
    client.post("/demo/persona", data={"persona": "maya"})
    first = klaviyo.decode_kla_id(client.get_cookie(KLA_ID_COOKIE).value)
    client.post("/demo/persona", data={"persona": "oliver"})
    second = klaviyo.decode_kla_id(client.get_cookie(KLA_ID_COOKIE).value)
    assert second.cid == first.cid and (second.exchange_id or "").startswith("ff73rt")


def test_choosing_a_persona_with_tracking_off_writes_nothing(client, segment_calls):
    client.set_cookie(klaviyo.KLA_OFF_COOKIE, "true")
    response = client.post("/demo/persona", data={"persona": "maya"})
    assert KLA_ID_COOKIE not in set_cookies(response)
    assert segment_calls[0][1].exchange_id is None
    assert "Klaviyo tracking off" in badge(client)


@pytest.mark.parametrize("form", [{"persona": "nobody"}, {}])
def test_unknown_persona_is_a_bad_request(client, form):
    assert client.post("/demo/persona", data=form).status_code == 400


def test_forget_me_returns_to_anonymous(client, segment_calls):
    client.post("/demo/persona", data={"persona": "maya"})
    segment_calls.clear()
    response = client.post("/demo/forget", data={"next": "https://evil.example/"})
    assert response.headers["Location"] == "/demo/personas"
    assert_expired(response, KLA_ID_COOKIE)
    assert [(kind, seen.exchange_id) for kind, seen in segment_calls] == [("forget", MAYA_XID)]
    assert "Anonymous" in badge(client)
    assert client.get_cookie(CONSENT_COOKIE).value == "granted"  # consent is a separate choice


# -- any cookie content, never a 500 ---------------------------------------------------------

cookie_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kla_id=cookie_text,
    consent=cookie_text,
    off=cookie_text,
    pending=cookie_text,
    path=st.sampled_from(["/", "/demo/personas", "/?_kx=" + XID]),
)
def test_any_cookie_content_renders(client, kla_id, consent, off, pending, path):
    header = "; ".join(
        [
            f"{KLA_ID_COOKIE}={kla_id}",
            f"{CONSENT_COOKIE}={consent}",
            f"{klaviyo.KLA_OFF_COOKIE}={off}",
            f"{PENDING_KX_COOKIE}={pending}",
        ]
    )
    assert client.get(path, headers={"Cookie": header}).status_code in (200, 302)
    response = client.post("/consent", data={"choice": "accept"}, headers={"Cookie": header})
    assert response.status_code == 302
