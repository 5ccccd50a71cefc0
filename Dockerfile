# pegbot daemon image. Multi-stage: build the locked environment, ship only what runs.
# (No Docker engine runs on the development machines; this file is kept plain and checked by hand.)
# By default it replays the bundled sample (config/default.toml). A paper or live run mounts its
# config and passes its keys as environment variables:
#   docker run -v $PWD/config/paper-alpaca.toml:/app/config/paper.toml:ro -e APCA_API_KEY_ID ... \
#     pegbot --config config/paper.toml
# The local sandbox (anvil, solc-js, the Uniswap artifacts from npm) is not in the image: `make run`
# runs it on the host. Ray (`pegbot sweep --ray`, docs/sweep.md) is an optional extra; an image
# that sweeps on a cluster is built with it: docker build --build-arg EXTRAS="--extra ray" .

FROM python:3.11-slim AS build
ARG EXTRAS=""
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project $EXTRAS
COPY bot ./bot
COPY strategies ./strategies
COPY connectors ./connectors
RUN uv sync --frozen --no-dev $EXTRAS

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin pegbot
WORKDIR /app
COPY --from=build --chown=pegbot:pegbot /app /app
COPY --chown=pegbot:pegbot config ./config
COPY --chown=pegbot:pegbot data/sample ./data/sample
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER pegbot
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["pegbot", "run"]
CMD ["--config", "config/default.toml"]
