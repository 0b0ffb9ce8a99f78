# PosterBench web app, served by gunicorn (app/gunicorn_conf.py). The catalog, the model artifacts and the database
# live on mounted volumes and are never baked into the image; configuration comes from environment variables.
#
# Build:
#   docker build -t posterbench .
# Run (a catalog, the `make train onnx index` outputs under /srv/runs/<catalog>-<hash>/, and a database dir), its
# port published on the host's loopback only, for the one reverse proxy in front of it (see TRUSTED_PROXIES below):
#   docker run -d -p 127.0.0.1:8000:8000 \
#     -v /srv/catalog:/data/catalog:ro -v /srv/runs:/data/runs:ro -v posterbench-db:/data/db \
#     -e POSTERBENCH_SECRET_KEY="$(cat secret_key)" \
#     -e POSTERBENCH_MODEL=/data/runs/<catalog>-<hash>/model-default \
#     -e POSTERBENCH_INDEX=/data/runs/<catalog>-<hash>/index-default \
#     posterbench
# gunicorn's master also starts the job worker (app/gunicorn_conf.py); GUNICORN_JOB_WORKER=no leaves it to other
# containers of this image run with the command `posterbench worker --restart`.
# Required at run time: POSTERBENCH_SECRET_KEY (never put in the image), POSTERBENCH_MODEL, POSTERBENCH_INDEX.
# Optional: POSTERBENCH_CLEMS (CLEMS's genres, `make clems`; the model's scored better), any other POSTERBENCH_<SETTING> of app/__init__.py (e.g. POSTERBENCH_API_TOKEN),
# and GUNICORN_BIND / GUNICORN_WORKERS / GUNICORN_THREADS / GUNICORN_TIMEOUT / ... of app/gunicorn_conf.py.
# A host directory mounted on /data/db must be writable by uid 10001.

# Python 3.11 (pyproject's requires-python) on Debian 12; pin a digest (@sha256:...) once built somewhere.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every wheel in requirements.txt bundles its native libraries: no apt packages are needed.
RUN groupadd --gid 10001 posterbench \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin posterbench \
    && mkdir -p /data/catalog /data/runs /data/db \
    && chown -R 10001:10001 /data

WORKDIR /srv/posterbench

# The serving install only: requirements.txt is the lock of pyproject.toml's base dependencies (no TensorFlow, Keras
# or Selenium), every file checked against its hash. This layer is rebuilt only when the lock changes.
COPY requirements.txt .
RUN pip install --require-hashes -r requirements.txt

# Then the project itself, without dependencies (all locked above), built by the locked setuptools from the packages
# the app imports (tests/test_dockerfile.py checks it) and installed into site-packages, read-only to the app.
COPY pyproject.toml /tmp/posterbench/
COPY app /tmp/posterbench/app
COPY bandit /tmp/posterbench/bandit
COPY catalog /tmp/posterbench/catalog
COPY embedding /tmp/posterbench/embedding
COPY model /tmp/posterbench/model
COPY posterbench /tmp/posterbench/posterbench
COPY recommend /tmp/posterbench/recommend
COPY scraper /tmp/posterbench/scraper
COPY templates /tmp/posterbench/templates
COPY static /tmp/posterbench/static
RUN pip install --no-deps --no-build-isolation /tmp/posterbench \
    && rm -rf /tmp/posterbench

# The documented layout: one reverse proxy (TLS, on the same host) in front of the container, which alone can reach
# its port and appends the client's address to X-Forwarded-For; the vote limit counts that address, and a client's
# own X-Forwarded-For entries are never believed. Clients that reach the container directly: set it to 0.
ENV POSTERBENCH_CATALOG=/data/catalog \
    POSTERBENCH_DATABASE=/data/db/posterbench.sqlite \
    POSTERBENCH_TRUSTED_PROXIES=1 \
    GUNICORN_BIND=0.0.0.0:8000

USER 10001:10001
VOLUME ["/data/catalog", "/data/runs", "/data/db"]
EXPOSE 8000

# /healthz on the port of GUNICORN_BIND, with the standard library (no curl in the image), never through a proxy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; port = os.environ.get('GUNICORN_BIND', ':8000').rsplit(':', 1)[1]; u.build_opener(u.ProxyHandler({})).open(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["gunicorn", "-c", "python:app.gunicorn_conf", "app:create_app()"]
