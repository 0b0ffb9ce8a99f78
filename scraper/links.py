"""IMDb title links as people paste them: which texts are links to a title page, and the title's id they name."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

IMDB_PAGE_HOSTS = frozenset({"www.imdb.com", "m.imdb.com", "imdb.com"})
IMDB_IMAGE_HOSTS = frozenset({"m.media-amazon.com", "ia.media-imdb.com", "images-na.ssl-images-amazon.com"})
EXAMPLE_LINK = "https://www.imdb.com/title/tt0111161/"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
"""Unicode categories no IMDb link holds: control and format characters (a right-to-left override), surrogates and
spaces of any kind."""
_TITLE_PATH = re.compile(r"/(?:[a-z]{2}/)?title/(tt[0-9]{7,8})(?:/.*)?", re.DOTALL)  # optional language: /de/title/
_BARE_ID = re.compile(r"tt[0-9]{7,8}")
_WEB_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?![0-9])")  # javascript:, mailto:, data: (not host:port)


INVISIBLE_MARKS = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
"""Zero-width spaces and joiners, direction marks, the word joiner and the byte-order mark: taken off a pasted link's
ends (anywhere else they make it refused)."""


def has_unsafe_characters(text: str) -> bool:
    """Whether `text` holds a backslash or a character of UNSAFE_CATEGORIES, which no web address we fetch has."""
    return any(character == "\\" or unicodedata.category(character) in UNSAFE_CATEGORIES for character in text)


class LinkError(ValueError):
    """A pasted text that is not a link to an IMDb title page; the message tells the person what to paste instead."""


MAX_LINK_LENGTH = 2_000
"""IMDb title links are under 200 characters even with a query string; longer text is refused unread (and unechoed)."""


def imdb_id_from_link(text: str) -> str:
    """The title ID ("tt0111161") of a pasted IMDb title link such as https://www.imdb.com/title/tt0111161/.

    Accepts www., m. or no subdomain, http or https or no scheme, sub-pages (/reference), a language prefix (/de/),
    queries and fragments. Raises LinkError, with a message for a person, for anything else."""
    link = text.strip().strip(INVISIBLE_MARKS).strip()  # marks a copy from a web page or a chat may bring along
    if not link:
        raise LinkError(f"Paste a link to an IMDb title page, such as {EXAMPLE_LINK}")
    if len(link) > MAX_LINK_LENGTH:
        raise LinkError(
            f"That text is {len(link):,} characters long, too long for an IMDb link; paste a link to an IMDb title "
            f"page such as {EXAMPLE_LINK}"
        )
    if _BARE_ID.fullmatch(link):
        raise LinkError(
            f"{link} is an IMDb ID, not a link; paste the link to its title page: https://www.imdb.com/title/{link}/"
        )
    if has_unsafe_characters(link):
        raise LinkError(
            "That link contains spaces, backslashes or control characters, which IMDb links never have; "
            f"paste a link to an IMDb title page such as {EXAMPLE_LINK}"
        )
    site_name_guessed = not _WEB_SCHEME.match(link)
    if site_name_guessed:
        if _OTHER_SCHEME.match(link) or link.startswith("/"):
            raise LinkError(f"That is not a web link; paste a link to an IMDb title page such as {EXAMPLE_LINK}")
        link = "https://" + link
    try:
        parts = urlsplit(link)
    except ValueError:  # a malformed [IPv6] host, or one that turns into other characters under NFKC
        raise LinkError(
            f"That is not a valid web link; paste a link to an IMDb title page such as {EXAMPLE_LINK}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise LinkError(
            f"That is a {scheme}: link, not a web page; paste a link to an IMDb title page such as {EXAMPLE_LINK}"
        )
    problem, host = _authority_problem(parts.netloc, scheme, IMDB_PAGE_HOSTS)
    if problem is not None:
        reason = {
            "userinfo": f"That link hides its real destination ({host}) behind a user name and an @ sign",
            "port": f"That link names a port ({parts.netloc}), which IMDb links never do",
            "empty": "That link has no site name in it",
            "look_alike": f"The site name in that link ({host}) uses letters that only look like ordinary ones",
            "not_allowed": (
                "That is not a link to a web site"
                if site_name_guessed and "." not in host and not host.startswith("[")  # "a", "javascript:1"
                else f"That is a link to {host}"
            ),
        }[problem]
        raise LinkError(f"{reason}; paste a link to an IMDb title page such as {EXAMPLE_LINK}")
    match = _TITLE_PATH.fullmatch(parts.path)
    if match is None:
        raise LinkError(
            f"That is a page of IMDb ({host}{parts.path or '/'}) but not a film's or series' title page; "
            f"paste a link such as {EXAMPLE_LINK}"
        )
    return match.group(1)


def _authority_problem(netloc: str, scheme: str, allowed: frozenset[str]) -> tuple[str | None, str]:
    """(what is wrong with a URL's authority or None, its host): "userinfo" (a user name before @), "port" (other
    than the scheme's default), "empty", "look_alike" (a non-ASCII host) or "not_allowed" (not exactly one of
    `allowed`, which a trailing dot also makes it); the host is lowercased when it is ASCII."""
    if "@" in netloc:
        return "userinfo", netloc.rpartition("@")[2]
    host, port = netloc, None
    if not netloc.startswith("[") and ":" in netloc:
        host, _, port = netloc.rpartition(":")
    if not host.isascii():
        return "look_alike", host
    host = host.lower()
    if not host:
        return "empty", host
    if host not in allowed:
        return "not_allowed", host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return "port", host
    return None, host
