#!/bin/sh
# Entrypoint of the zoobench MLflow server image (docker/Dockerfile.mlflow).
#
# Secrets arrive as files (Docker/Compose secrets under /run/secrets) or as environment
# variables (Kubernetes secretKeyRef); either way they reach `mlflow server` through its
# environment, never its command line (which `ps` and `docker inspect` show to anyone):
#   postgres_password        -> PGPASSWORD (libpq reads it: the store URI has no password)
#   mlflow_admin_password    -> MLFLOW_AUTH_ADMIN_PASSWORD (the auth app's first admin)
#   mlflow_flask_secret_key  -> MLFLOW_FLASK_SERVER_SECRET_KEY (CSRF tokens of the auth app)
# Then it writes the auth app's settings (MLFLOW_AUTH_CONFIG_PATH) and runs its arguments.
set -eu

secrets_dir="${MLFLOW_SECRETS_DIR:-/run/secrets}"

from_file() {  # VARIABLE FILE: set VARIABLE from FILE unless it is set already
    if [ -z "$(printenv "$1" || true)" ] && [ -r "$secrets_dir/$2" ]; then
        value="$(cat "$secrets_dir/$2")"
        export "$1=$value"
    fi
}

from_file PGPASSWORD postgres_password
from_file MLFLOW_AUTH_ADMIN_PASSWORD mlflow_admin_password
from_file MLFLOW_FLASK_SERVER_SECRET_KEY mlflow_flask_secret_key
from_file MLFLOW_AUTH_DATABASE_URI mlflow_auth_database_uri

if [ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]; then
    # configparser reads '%' as interpolation: double it in the URI.
    auth_db="$(printf '%s' "${MLFLOW_AUTH_DATABASE_URI:-sqlite:////mlflow/auth/basic_auth.db}" \
        | sed 's/%/%%/g')"
    MLFLOW_AUTH_CONFIG_PATH="${HOME:-/tmp}/basic_auth.ini"
    umask 077
    cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${auth_db}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
    export MLFLOW_AUTH_CONFIG_PATH
fi

exec "$@"
