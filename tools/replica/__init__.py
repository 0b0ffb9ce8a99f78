"""An offline replica of IMDb on loopback HTTP, rendered from a catalog, for testing the scraper and the app's IMDb
links without the network: advanced title search pages with a working "50 more" button and its GraphQL endpoint,
title pages, poster images under the `_V1_` URL scheme, a result cap, and switchable failure modes (bot wall, 403,
CAPTCHA, slow responses, missing posters, malformed JSON). `write_replica_catalog` makes its synthetic movie set.

A test and benchmark tool, not part of the installed product: the tests, `make scrape-replica` and
`posterbench replica` (from the checkout) use it; `python -m tools.replica DIR` serves one by hand.

- `tools.replica.pages`: title pages; `tools.replica.search`: search pages, "50 more", the bot wall, images;
- `tools.replica.movies`: the synthetic movie set; `tools.replica.server`: the HTTP server.
"""

from tools.replica.movies import replica_movies, write_replica_catalog
from tools.replica.pages import LOGO_IMAGE, VARIANTS, abbreviate_votes, title_page_html
from tools.replica.search import SEARCH_TEMPLATES, WALL_KINDS, FailureModes, poster_key
from tools.replica.server import ReplicaServer

__all__ = [
    "LOGO_IMAGE",
    "SEARCH_TEMPLATES",
    "VARIANTS",
    "WALL_KINDS",
    "FailureModes",
    "ReplicaServer",
    "abbreviate_votes",
    "poster_key",
    "replica_movies",
    "title_page_html",
    "write_replica_catalog",
]
