# PosterBench web app. Catalog, model artifacts and database live on mounted volumes, never in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 \
    POSTERBENCH_CATALOG=/data/catalog \
    POSTERBENCH_MODEL=/data/run/model-demo \
    POSTERBENCH_INDEX=/data/run/index-demo \
    POSTERBENCH_DATABASE=/data/db/posterbench.sqlite

RUN useradd --create-home --uid 10001 posterbench
WORKDIR /srv/posterbench

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY app app
COPY catalog catalog
COPY model model
COPY embedding embedding
COPY bandit bandit
COPY scraper scraper
COPY templates templates
COPY static static
COPY gunicorn.conf.py .

USER posterbench
VOLUME ["/data/catalog", "/data/run", "/data/db"]
EXPOSE 8000
# POSTERBENCH_SECRET_KEY must be given at `docker run` time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "app:create_app()"]
