# Diffusion Theater: docker build -t diffusion-theater . && docker run -p 8000:8000 diffusion-theater
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The CPU wheel index: PyPI's default torch wheels for Linux carry CUDA (several GB).
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /app
RUN useradd --create-home --uid 10001 theater

# Same dependency source as `make install`: pyproject.toml under constraints.txt.
COPY pyproject.toml constraints.txt ./
COPY app ./app
COPY models ./models
RUN pip install -c constraints.txt -e .

COPY static ./static
COPY templates ./templates

USER 10001
ENV THEATER_HOST=0.0.0.0 THEATER_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
