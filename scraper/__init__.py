"""Builds catalogs from IMDb: reads its title pages (`title_page`), downloads from its hosts only and safely
(`fetch`), and replicates its pages offline for tests (`replica`). The Selenium scraper of its search pages is
not written yet (issue 7); the catalog format it will write is defined in `catalog`."""
