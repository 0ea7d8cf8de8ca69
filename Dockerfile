# The source-dixa connector image, in the shape of Airbyte's Python connector images: the package installed
# (non-editable, so spec.yaml and schemas/*.json come from setup.py's package_data), /entrypoint.sh named by
# AIRBYTE_ENTRYPOINT, and a non-root user. Build: `docker build -t airbyte/source-dixa:dev .`;
# without a Docker engine, `make image-check` builds and runs it with podman (scripts/image_check.sh).
#
# Airbyte's python-connector-base 4.0.x is Python 3.11 on Debian bookworm (4.1.0 moved to Python 3.13). Tag and
# digest as pinned by airbytehq/airbyte in airbyte-integrations/connectors/source-google-drive/metadata.yaml
# (connectorBuildOptions.baseImage, commit 00ca84635c0179010513c629003d4c78ea353014).
# metadata.yaml's connectorBuildOptions.baseImage names the same image (unit_tests/test_packaging.py checks it).
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

FROM ${BASE_IMAGE} AS builder
WORKDIR /airbyte/integration_code
COPY setup.py README.md ./
COPY source_dixa ./source_dixa
# The base image's Python lives under /usr/local, and so does everything pip installs here.
RUN pip install --no-cache-dir .

FROM ${BASE_IMAGE}
WORKDIR /airbyte/integration_code
COPY --from=builder /usr/local /usr/local
# exec, so that a SIGTERM from the platform reaches the connector rather than the shell.
RUN printf '%s\n' '#!/usr/bin/env bash' 'set -e' 'exec source-dixa "$@"' > /entrypoint.sh \
    && chmod 755 /entrypoint.sh \
    && source-dixa spec > /dev/null

LABEL io.airbyte.name="airbyte/source-dixa" \
      io.airbyte.version="0.2.0"

ENV AIRBYTE_ENTRYPOINT="/entrypoint.sh"
ENTRYPOINT ["/entrypoint.sh"]

# The base image creates this user (uid 1000). Airbyte's images name it, so this one does too.
# hadolint ignore=DL3066
USER airbyte
