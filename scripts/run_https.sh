#!/usr/bin/env bash
# `make run-https`: the same stack as `make run` (scripts/run.sh), served by
# gunicorn over HTTPS with a throwaway self-signed certificate and the
# production security settings (CALLIQ_HTTPS=1, DJANGO_DEBUG=0), so anyone can
# scan the headers locally (e.g. with Mozilla's HTTP Observatory CLI).
#
# The certificate is made fresh on each start into var/tls/ and trusted by
# nothing: expect the browser's warning. Open https://127.0.0.1:${PORT}/ (an
# IP address: browsers never remember HSTS for one, whereas HSTS for
# "localhost" would pin every local app to HTTPS for a year).
# Environment: as for scripts/run.sh; PORT defaults to 8443.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v openssl >/dev/null || { echo "run-https needs openssl" >&2; exit 1; }
mkdir -p var/tls
chmod 700 var/tls
echo "==> Making a throwaway self-signed certificate in var/tls/"
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 7 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null

export PORT=${PORT:-8443}
export CALLIQ_HTTPS=1
export DJANGO_DEBUG=0
export DJANGO_CSRF_TRUSTED_ORIGINS=${DJANGO_CSRF_TRUSTED_ORIGINS:-https://127.0.0.1:${PORT},https://localhost:${PORT}}
if [ -z "${PROVIDER_SIMULATOR_SECRET:-}" ]; then
  PROVIDER_SIMULATOR_SECRET=$(openssl rand -hex 24)
  export PROVIDER_SIMULATOR_SECRET
fi
# gunicorn reads extra command-line arguments from GUNICORN_CMD_ARGS, so run.sh
# starts the very same processes, only with TLS on gunicorn.
export GUNICORN_CMD_ARGS="--certfile=var/tls/cert.pem --keyfile=var/tls/key.pem ${GUNICORN_CMD_ARGS:-}"
echo "==> Serving over HTTPS: https://127.0.0.1:${PORT}/ (self-signed certificate)"
exec bash scripts/run.sh
