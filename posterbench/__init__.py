"""PosterBench's command line: `posterbench`, one command with a subcommand for every stage of the pipeline (scrape
and its offline replica, IMDb datasets, demo catalog, check, train, evaluate, thresholds, index, ONNX export, CLEMS,
database, serve, job worker, recommendation quality, benchmarks), mounting the stages' own click commands (`python -m
catalog`, `model`, `embedding`, `scraper` still work)."""
