# Diffusion Theater: docker build -t diffusion-theater . && docker run -p 8000:8000 diffusion-theater
# Base pinned to a Debian release (the bare 3.11-slim tag moved from bookworm to trixie under its users).
# To pin it byte for byte, append the digest: FROM python:3.11-slim-bookworm@sha256:<digest>
# (README, "Docker", says how to look it up and update it).
FROM python:3.11-slim-bookworm AS dependencies

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies in a stage of their own, into a virtual environment the image copies whole: the index they came
# from (TORCH_INDEX, which may carry a mirror's credentials) stays in this stage and never reaches the image's
# history. Same source as `make install`: the [project] dependencies of pyproject.toml (listed by tomllib,
# without the dev extras) under constraints.txt. constraints.txt pins torch==2.13.0+cpu, a build that exists
# only on the PyTorch CPU wheel index: torch stays CPU-only (PyPI's Linux wheels carry CUDA, several GB), and an
# index without it fails the build instead of pulling CUDA. TORCH_INDEX may point at a mirror of that index:
#   docker build --build-arg TORCH_INDEX=https://mirror.example.org/whl/cpu -t diffusion-theater .
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /build
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt --extra-index-url "$TORCH_INDEX" -r requirements.txt

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN useradd --create-home --uid 10001 theater
# About 1.1 GB, first, so code and checkpoint edits keep this layer cached.
COPY --from=dependencies /opt/venv /opt/venv
COPY pyproject.toml ./

# The project itself, editable as with `make install`: app/settings.py finds templates, static and the
# checkpoints next to the app package, i.e. under /app. The checkpoints (about 30 MB) come first, in a layer of
# their own, so a code edit re-copies the code only; `COPY models` then adds the code around them.
COPY models/checkpoints ./models/checkpoints
COPY app ./app
COPY models ./models
RUN pip install --no-deps -e .

COPY static ./static
COPY templates ./templates
# /why and the races read these at request time: the text race's default steps come from the frontier, the
# image race's recovery rates from its committed evaluation.
COPY docs/data-efficiency.csv docs/text-frontier.csv docs/image-race-recovery.json ./docs/

USER 10001
ENV THEATER_HOST=0.0.0.0 THEATER_PORT=8000
EXPOSE 8000
# app/healthcheck.py: straight to loopback (never through a proxy from the environment), at the port the server
# announced at start-up, so `docker run ... python -m app --port 9000` is checked on 9000.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-m", "app.healthcheck"]
# Host and port come from THEATER_HOST / THEATER_PORT (override with docker run -e).
CMD ["python", "-m", "app"]
