# Diffusion Theater: docker build -t diffusion-theater . && docker run -p 8000:8000 diffusion-theater
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 theater

# Same dependency source as `make install`: pyproject.toml under constraints.txt, torch from the CPU
# wheel index (PyPI's default torch wheels for Linux carry CUDA, several GB).
COPY pyproject.toml constraints.txt ./
COPY app ./app
COPY models ./models
RUN pip install -c constraints.txt --extra-index-url https://download.pytorch.org/whl/cpu -e .

COPY static ./static
COPY templates ./templates

USER 10001
ENV THEATER_HOST=0.0.0.0 THEATER_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request as u; p=os.environ.get('THEATER_PORT','8000'); sys.exit(0 if u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status == 200 else 1)"]
# Host and port come from THEATER_HOST / THEATER_PORT (override with docker run -e).
CMD ["python", "-m", "app"]
