"""Builds catalogs from IMDb: a polite, resumable Selenium scraper of its advanced title search (`scrape`, asked
for by `settings`, remembered in `state`), a reader of its title pages (`title_page`, `title_scanner`), the IMDb
title links people paste (`links`), a guarded downloader for its hosts (`fetch`, `addresses`), and a reader of its
non-commercial datasets (`datasets`). The offline replica of its pages for tests lives in tools/replica."""
