"""The security layer through the real app: headers on every response, one same-origin check
for every POST, and the cookies' flags. Browser proof is in tests/e2e/test_security.py.

The app is ``create_app`` with Klevu unreachable (pages render without banners) and no relay,
so whatever a request queued is still in the outbox for the test to read.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing

import pytest
from flask import Flask

from storefront import create_app
from storefront.catalog import load_catalog
from storefront.config import ConfigError, from_env
from storefront.identity import CONSENT_COOKIE
from storefront.klevu.analytics import shown, tokens
from storefront.klevu.analytics.delivery import outbox
from storefront.klevu.banners.placement import banner_services
from storefront.security.headers import content_security_policy
from storefront.security.origin import CROSS, SAME, UNKNOWN, request_site
from tests.helpers import DEMO_ENV, app_config, banner_tokens, free_port, sample_banner

CATALOG = load_catalog()
PRODUCT = CATALOG.products[0]
CATEGORY = CATALOG.categories[0]
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://localhost:8080"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
]
CROSS_IDS = [
    "cross-site",
    "sibling-subdomain",
    "foreign-origin",
    "lookalike-origin",
    "other-port",
    "opaque-origin",
    "cross-site-claiming-our-origin",
    "same-origin-claim-with-a-foreign-origin",
]


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: sources for name, *sources in (d.split() for d in policy.split("; "))}


def set_cookies(response) -> dict[str, dict[str, str]]:
    """``Set-Cookie`` headers as {name: {attribute (lowered): value}}."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        pair, *attributes = [part.strip() for part in header.split(";")]
        cookies[pair.partition("=")[0]] = {
            k.lower(): v for k, _, v in (a.partition("=") for a in attributes)
        }
    return cookies


def queued(app) -> int:
    with closing(sqlite3.connect(outbox(app).path)) as db:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]


def form_token(client, path: str = "/") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no form token on {path}"
    return match.group(1)


# -- the pure parts ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers, verdict",
    [
        ({"Sec-Fetch-Site": "same-origin"}, SAME),  # what every current browser sends
        ({"Origin": "http://shop.test"}, SAME),
        ({"Origin": "HTTP://SHOP.TEST", "Sec-Fetch-Site": "same-origin"}, SAME),
        ({"Sec-Fetch-Site": "cross-site"}, CROSS),
        ({"Sec-Fetch-Site": "same-site"}, CROSS),
        ({"Origin": "https://shop.test"}, CROSS),  # another scheme is another origin
        ({"Origin": "null"}, CROSS),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.test"}, CROSS),
        ({"Sec-Fetch-Site": "none"}, UNKNOWN),
        ({}, UNKNOWN),
    ],
)
def test_the_browser_decides_where_a_request_comes_from(headers, verdict):
    assert (
        request_site(headers.get("Sec-Fetch-Site"), headers.get("Origin"), "http://shop.test")
        == verdict
    )


def test_the_policy_names_every_directive_and_the_nonce():
    policy = content_security_policy(
        "abc", image_hosts=("https://cdn.example",), script_hosts=("https://static.klaviyo.com",)
    )
    assert policy == (
        "default-src 'self'; script-src 'self' 'nonce-abc' https://static.klaviyo.com; "
        "style-src 'self' 'nonce-abc'; img-src 'self' https://cdn.example; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    )
    assert "nonce" not in content_security_policy(None)


# -- settings ---------------------------------------------------------------------------------
def test_image_hosts_are_origins_or_schemes():
    hosts = from_env(
        {
            **DEMO_ENV,
            "KLEVU_IMAGE_HOSTS": "https://cdn.example.com/, https://*.img.example:8443, https:",
        }
    )["KLEVU_IMAGE_HOSTS"]
    assert hosts == ("https://cdn.example.com", "https://*.img.example:8443", "https:")


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"KLEVU_IMAGE_HOSTS": "cdn.example.com"}, "KLEVU_IMAGE_HOSTS"),
        ({"KLEVU_IMAGE_HOSTS": "https://cdn.example.com; script-src *"}, "KLEVU_IMAGE_HOSTS"),
        ({"KLEVU_IMAGE_HOSTS": "'unsafe-inline'"}, "KLEVU_IMAGE_HOSTS"),
        ({"KLEVU_IMAGE_HOSTS": "https://cdn.example.com/images"}, "KLEVU_IMAGE_HOSTS"),
        ({"PREFERRED_URL_SCHEME": "ftp"}, "PREFERRED_URL_SCHEME"),
        ({"STOREFRONT_PROXY_HOPS": "-1"}, "STOREFRONT_PROXY_HOPS"),
        ({"STOREFRONT_PROXY_HOPS": "many"}, "STOREFRONT_PROXY_HOPS"),
    ],
)
def test_a_bad_security_setting_names_its_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        from_env({**DEMO_ENV, **env})


def test_the_sanitizer_can_be_switched_off_only_in_tests(tmp_path):
    config = app_config(
        f"http://127.0.0.1:{free_port()}",
        tmp_path,
        STOREFRONT_UNSAFE_NO_SANITIZE="true",
        OUTBOX_RELAY_IN_APP=False,
    )
    assert banner_services(create_app(config)).engine.sanitize is False
    with pytest.raises(ConfigError, match="STOREFRONT_UNSAFE_NO_SANITIZE"):
        create_app({**config, "TESTING": False})


# -- headers on every response ----------------------------------------------------------------
def every_get_url(app: Flask) -> list[str]:
    """One URL per GET route of the app, with real catalog values for its arguments."""
    samples = {
        "product_id": PRODUCT.id,
        "slug": CATEGORY.slug,
        "filename": "js/beacon.js",
        "name": "sale-desktop",
        "digest": "0" * 32,  # no such stylesheet: its 404 page has the headers too
    }
    urls = []
    for rule in app.url_map.iter_rules():
        built = rule.build({arg: samples[arg] for arg in rule.arguments})
        if "GET" in (rule.methods or ()) and built:
            urls.append(built[1])
    return urls


def test_every_route_error_page_and_static_file_has_the_headers(app, client):
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    urls = [
        *every_get_url(app),
        "/no-such-page",
        "/p/no-such-product",
        "/static/none.css",
        "/boom",
        "/klevu/click?t=bad",
    ]
    assert len(urls) >= 15
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500 or url == "/boom", url
        policy = directives(response)
        assert policy["default-src"] == ["'self'"], url
        assert (policy["frame-ancestors"], policy["base-uri"], policy["object-src"]) == (
            ["'none'"],
            ["'none'"],
            ["'none'"],
        ), url
        assert policy["form-action"] == policy["connect-src"] == ["'self'"], url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", url
        assert "camera=()" in response.headers["Permissions-Policy"], url
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert "Strict-Transport-Security" not in response.headers, url  # plain HTTP


def test_a_page_nonce_is_new_per_response_and_on_each_script_and_style(app, client):
    nonces = set()
    for _ in range(2):
        response = client.get("/")
        nonce = directives(response)["script-src"][1].removeprefix("'nonce-").rstrip("'")
        assert directives(response)["style-src"] == ["'self'", f"'nonce-{nonce}'"]
        html = response.get_data(as_text=True)
        tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
        assert tags and all(f'nonce="{nonce}"' in tag for tag in tags)
        assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
        nonces.add(nonce)
    assert len(nonces) == 2


def test_image_hosts_reach_the_policy(tmp_path):
    app = create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}",
            tmp_path,
            KLEVU_IMAGE_HOSTS="https://cdn.example.com",
            OUTBOX_RELAY_IN_APP=False,
        )
    )
    assert directives(app.test_client().get("/"))["img-src"] == [
        "'self'",
        "https://cdn.example.com",
    ]


def https_app(tmp_path, **settings) -> Flask:
    return create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}", tmp_path, OUTBOX_RELAY_IN_APP=False, **settings
        )
    )


@pytest.mark.parametrize(
    "settings, headers, https",
    [
        ({"PREFERRED_URL_SCHEME": "https"}, {}, True),
        ({"STOREFRONT_PROXY_HOPS": "1"}, {"X-Forwarded-Proto": "https"}, True),
        ({"STOREFRONT_PROXY_HOPS": "1"}, {}, False),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # no trusted proxy: anyone could send it
    ],
    ids=["declared", "trusted-proxy", "proxy-says-http", "untrusted-header"],
)
def test_https_brings_hsts_and_secure_cookies(tmp_path, settings, headers, https):
    app = https_app(tmp_path, **settings)
    client = app.test_client()
    page = client.get("/", headers=headers)  # the session (form token)
    assert ("Strict-Transport-Security" in page.headers) is https
    if https:
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookies = {
        **set_cookies(page),
        **set_cookies(client.get("/?_kx=abc.DemoCo", headers=headers)),
    }
    client.set_cookie("shop_consent", "granted")  # "recently viewed" is kept only with consent
    cookies.update(set_cookies(client.get(banner_click(app), headers=headers)))
    assert {"session", "shop_pending_kx", "klevu_recent_clicks"} <= cookies.keys()
    assert all(("secure" in attributes) is https for attributes in cookies.values())


# -- one same-origin check for every POST -----------------------------------------------------
def banner_token(app) -> str:
    view = sample_banner([PRODUCT])
    return banner_tokens(app.config["SECRET_KEY"], "pv-1", view)[0]


def link_token(app) -> str:
    """The token of the same banner's no-JavaScript click links, the banner shown."""
    api_key = app.config["KLEVU"].api_key
    view = tokens.read_token(app.config["SECRET_KEY"], banner_token(app), 60, api_key=api_key)[1]
    with app.test_request_context():
        shown.remember(tokens.seal(view))
    return banner_tokens(app.config["SECRET_KEY"], "pv-1", view)[1]


def banner_event(app) -> str:
    return json.dumps({"type": "view", "token": banner_token(app)})


def banner_click(app) -> str:
    """A banner link followed without JavaScript (writes the recent-clicks cookie)."""
    return f"/klevu/click?t={link_token(app)}&id={PRODUCT.id}"


POSTS = {  # every route that changes something: what it is sent
    "/cart/add": {"product_id": PRODUCT.id},
    "/cart/remove": {"product_id": PRODUCT.id},
    "/checkout": {},
    "/consent": {"choice": "accept", "next": "/"},
    "/demo/persona": {"persona": "maya", "next": "/"},
    "/demo/forget": {"next": "/"},
}


def test_every_post_route_is_covered(app):
    posts = {rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    assert posts == {*POSTS, "/klevu/events"}


def shopper_with_a_cart(app):
    """A visitor with a product in the cart and consent given, through the shop's own forms."""
    client = app.test_client()
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    client.post("/cart/add", data=POSTS["/cart/add"])
    client.post("/consent", data={"choice": "accept"})
    return client


def visitor_state(client) -> tuple:
    cart = client.get("/cart").get_data(as_text=True)
    return (
        PRODUCT.name in cart,
        client.get_cookie(CONSENT_COOKIE).value,
        client.get_cookie("__kla_id"),
    )


@pytest.mark.parametrize("headers", CROSS_SITE, ids=CROSS_IDS)
@pytest.mark.parametrize("path", POSTS)
def test_cross_site_form_posts_are_403_with_a_page_and_change_nothing(app, path, headers):
    client = shopper_with_a_cart(app)
    before = visitor_state(client)
    client.environ_base.pop("HTTP_SEC_FETCH_SITE")
    # Even with the visitor's own token: a browser that names another site is believed.
    token = form_token(client, "/demo/personas")
    answer = client.post(path, data={**POSTS[path], "csrf_token": token}, headers=headers)
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"
    assert "sent from another site" in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    assert visitor_state(client) == before == (True, "granted", None)


@pytest.mark.parametrize("headers", CROSS_SITE, ids=CROSS_IDS)
def test_cross_site_beacon_posts_are_403_and_queue_nothing(app, client, headers):
    answer = client.post(
        "/klevu/events",
        data=banner_event(app),
        headers=headers,
        content_type="text/plain;charset=UTF-8",
    )
    assert (answer.status_code, answer.is_json) == (403, True)
    assert queued(app) == 0


@pytest.mark.parametrize(
    "headers", [SAME_ORIGIN, {"Origin": "http://localhost"}], ids=["fetch-metadata", "origin"]
)
def test_same_origin_form_posts_need_no_token(app, headers):
    client = app.test_client()
    answer = client.post("/cart/add", data=POSTS["/cart/add"], headers=headers)
    assert answer.status_code == 302
    assert PRODUCT.name in client.get("/cart").get_data(as_text=True)


def test_a_browser_that_says_nothing_needs_the_form_token(app):
    client = app.test_client()
    assert client.post("/cart/add", data=POSTS["/cart/add"]).status_code == 403
    assert (
        client.post(
            "/cart/add", data={**POSTS["/cart/add"], "csrf_token": "guessed" * 7}
        ).status_code
        == 403
    )
    other_visitor = form_token(app.test_client())
    assert (
        client.post(
            "/cart/add", data={**POSTS["/cart/add"], "csrf_token": other_visitor}
        ).status_code
        == 403
    )
    assert PRODUCT.name not in client.get("/cart").get_data(as_text=True)
    token = form_token(client)
    assert (
        client.post("/cart/add", data={**POSTS["/cart/add"], "csrf_token": token}).status_code
        == 302
    )
    assert client.post("/checkout", headers={"X-CSRF-Token": token}).status_code == 302


def test_the_beacon_needs_no_token_from_a_browser_that_says_nothing(app, client):
    answer = client.post(
        "/klevu/events", data=banner_event(app), content_type="text/plain;charset=UTF-8"
    )
    assert answer.status_code == 202
    assert queued(app) == 1


def test_every_form_carries_the_token(app):
    client = shopper_with_a_cart(app)
    client.set_cookie(CONSENT_COOKIE, "", max_age=0)  # the consent banner's form too
    pages = ["/", f"/p/{PRODUCT.id}", "/cart", "/checkout", "/demo/personas"]
    forms = 0
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        for form in re.findall(r"<form\b.*?</form>", html, re.S):
            assert 'name="csrf_token"' in form, (page, form[:80])
            forms += 1
    assert forms >= 8


# -- cookies ----------------------------------------------------------------------------------
def test_every_cookie_the_shop_sets_has_deliberate_flags(app):
    client = app.test_client()
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    seen: dict[str, dict[str, str]] = {}
    for response in (
        client.get("/?_kx=abc.DemoCo"),  # before consent: waits in a cookie
        client.post("/demo/persona", data={"persona": "maya"}),  # consents
        client.get(banner_click(app)),  # "recently viewed": kept with consent only
    ):
        seen.update(
            (name, attributes)
            for name, attributes in set_cookies(response).items()
            if attributes.get("max-age") != "0"
        )  # written, not expired
    assert seen.keys() >= {
        "session",
        "shop_pending_kx",
        "klevu_recent_clicks",
        CONSENT_COOKIE,
        "__kla_id",
    }
    for name, attributes in seen.items():
        assert attributes.get("samesite") == "Lax", name
        assert attributes.get("path") == "/", name
        # __kla_id is Klaviyo's, and its onsite script reads it (docs/klaviyo-identity.md);
        # the beacon writes klevu_recent_clicks, as JSv2's script does (recently_viewed.py).
        assert ("httponly" in attributes) is (name not in ("__kla_id", "klevu_recent_clicks")), name


def test_a_refused_post_sets_no_cookie_that_would_overwrite_the_visitors_own(app):
    """A cross-site POST comes without the visitor's Lax cookies: the error page must not
    start a session (or anything else) for the stranger it sees, or the cart would be lost."""
    stranger = app.test_client()
    answer = stranger.post(
        "/consent", data={"choice": "accept"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 403 and 'name="csrf_token"' in answer.get_data(as_text=True)
    assert answer.headers.getlist("Set-Cookie") == []
