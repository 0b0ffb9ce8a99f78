"""gunicorn settings for PosterBench: `gunicorn -c python:app.gunicorn_conf "app:create_app()"`, which `posterbench
serve`, the Docker image and tools/serving.py run. A module of the installed package, so that serving needs no checkout.
Each can be overridden on the command line or with GUNICORN_* / POSTERBENCH_* variables as below."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Each worker process loads the model, index and catalog once (no preload: neither TensorFlow nor ONNX Runtime's
# thread pools survive a fork). The ONNX export's weights are memory-mapped, so the workers share one copy of them.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads share their worker's model; ONNX Runtime (or TensorFlow) releases the GIL while it computes.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A worker starting up loads the model (seconds with ONNX Runtime; tens of seconds for TensorFlow on a cold disk);
# a request may fetch a poster from IMDb (IMDB_TIMEOUT_SECONDS, 10 s per request, twice).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Bound memory growth: a worker is replaced after this many requests (staggered by the jitter).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
limit_request_line = 8190
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
