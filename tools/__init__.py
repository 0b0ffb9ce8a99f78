"""Test and benchmark tools that are not part of the product: the offline IMDb replica (`tools.replica`) and the
gunicorn launcher the browser tests and the load benchmarks serve the app with (`tools.serving`), and the pytest
plugin that counts each test file's CPU (`tools.test_cpu`). Not installed by
the wheel nor copied into the Docker image; they run from the repository's root (the tests, `make scrape-replica`,
`posterbench replica`, `posterbench bench ...`)."""
