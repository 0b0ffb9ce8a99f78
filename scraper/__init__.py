"""Builds catalogs from IMDb: a polite, resumable Selenium scraper of its search and title pages.

Not written yet (issue 7); the catalog format it writes is defined in `catalog`."""
