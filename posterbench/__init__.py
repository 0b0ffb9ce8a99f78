"""PosterBench's command line: `posterbench`, one command with a subcommand for every stage of the pipeline (demo
catalog, check, train, evaluate, index, CLEMS, ONNX export, serve, scrape, benchmarks), mounting the stages' own click
commands (`python -m catalog`, `model`, `embedding`, `scraper` still work), and the gunicorn settings `serve` uses."""
