# callkpi: one image for `callkpi worker`, `callkpi serve` and `callkpi simulate` (docker-compose.yml).
# Two stages: the first installs the project into a virtual environment and compiles the
# pipeline process's hot modules there with mypyc (the native build, README "Faster: the native
# build"); the second copies only that environment, without the compiler.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/callkpi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY scripts/native_build.py ./scripts/
# Installed (not editable), then compiled in place inside site-packages, so the manifest the
# worker checks at start describes exactly the installed sources; mypy (mypyc) and setuptools
# are build tools only, removed again.
RUN /opt/callkpi/bin/pip install . "mypy==2.4.1" "setuptools>=65" \
    && site=$(/opt/callkpi/bin/python -c "import stream, pathlib; print(pathlib.Path(stream.__file__).parent.parent)") \
    && /opt/callkpi/bin/python scripts/native_build.py --root "$site" \
    && rm -rf "$site/build" /src \
    && /opt/callkpi/bin/pip uninstall -y mypy setuptools \
    && /opt/callkpi/bin/python -m stream.native

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/callkpi/bin:$PATH

COPY --from=build /opt/callkpi /opt/callkpi

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
