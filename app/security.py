"""Defences every response shares: a CSRF token on each state-changing form, header checks on the JSON API,
security headers, and the keyed client hash that rate limits count by."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, abort, current_app, request, session
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from werkzeug.middleware.proxy_fix import ProxyFix

CSRF_FIELD = "csrf_token"
API_HEADER = "X-Requested-With"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Pages load only our own scripts, styles and images; nothing may frame them.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# matplotlib's SVG styles its elements inline; an SVG runs no script and loads nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


# The CSRF token is ours, not Flask-WTF's CSRFProtect (installable, but not used): it is the same scheme (a random
# token kept in the signed session cookie, sent back by every form, compared in constant time) in a dozen lines, for
# four forms that need no WTForms. CSRFProtect would add flask-wtf and WTForms to the serving install, sign each
# form's token with a time limit (one hour by default: a results page left open longer could no longer be rated), and
# would need the JSON API exempted and its own error page wired to ours.
def csrf_token() -> str:
    """The session's CSRF token, made on first use; every form that changes state carries it."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def check_request() -> None:
    """Refuse state-changing requests that a third-party page could have forged."""
    if request.method not in UNSAFE_METHODS or request.routing_exception is not None:
        return  # a request no view takes (404, 405) changes nothing: its own error answers it
    if request.blueprint == "api":
        check_api_request()
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "This form has expired (or did not come from PosterBench). Reload the page and try again.")


def check_api_request() -> None:
    """API calls carry `Authorization: Bearer <API_TOKEN>` when a token is configured, else the X-Requested-With
    header: a header that another site's page cannot add to a cross-origin request without our consent (CORS)."""
    token = current_app.config.get("API_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise Unauthorized(
                "this API needs the header Authorization: Bearer <token>", www_authenticate=WWWAuthenticate("bearer")
            )
    elif not request.headers.get(API_HEADER):
        abort(403, f"API requests that change state need the header {API_HEADER} (any value but empty: posterbench)")


def client_key() -> str:
    """A keyed hash of the client's address: enough to count its votes, not enough to recover the address."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    address = (request.remote_addr or "unknown").encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:32]


PRIVATE_ENDPOINTS = frozenset({"main.results", "main.feedback", "main.query_image"})
"""A person's results page and the poster they sent (their address carries its key): kept by no shared cache."""


def add_security_headers(response: Response) -> Response:
    is_svg = response.mimetype == "image/svg+xml"
    response.headers.setdefault("Content-Security-Policy", SVG_POLICY if is_svg else PAGE_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY" if not is_svg else "SAMEORIGIN")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint in PRIVATE_ENDPOINTS:
        response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD
    app.before_request(check_request)
    app.after_request(add_security_headers)
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:  # behind that many reverse proxies, the client's address is in X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
