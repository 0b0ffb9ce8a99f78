"""Builds catalogs from IMDb: a polite, resumable Selenium scraper of its advanced title search (`scrape`), a
reader of its title pages (`title_page`), a guarded downloader for its hosts (`fetch`), a reader of its
non-commercial datasets (`datasets`), and an offline replica of its pages for tests (`replica`)."""
