# callkpi: one image for `callkpi worker`, `callkpi serve` and `callkpi simulate` (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project (all dependencies ship wheels for linux x86-64: no compiler needed).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install . && rm -rf /src

# Run as an unprivileged user; the data directory is owned by it so a named volume mounted there
# (workers' CALLKPI_DATA_DIR) is writable.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin callkpi \
    && mkdir -p /home/callkpi/data \
    && chown callkpi:callkpi /home/callkpi/data
USER callkpi
WORKDIR /home/callkpi

EXPOSE 8077
ENTRYPOINT ["callkpi"]
CMD ["serve"]
