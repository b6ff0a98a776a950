#!/bin/sh
# Writes secrets.env beside this script: random passwords for the local overlay's servers and
# the URLs the roles connect with (the keys of secret.example.env). git-ignored.
#
#   k8s/overlays/local/generate-secrets.sh            # once, before the first deploy
#   k8s/overlays/local/generate-secrets.sh --force    # new passwords (see below)
#
# It refuses to overwrite an existing secrets.env: the servers set their passwords on their
# first start only (into their volumes), so new passwords need new volumes too
# (kubectl delete namespace observatory, or delete the PVCs, then deploy again).
set -eu

dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
out="$dir/secrets.env"

if [ -e "$out" ] && [ "${1:-}" != "--force" ]; then
    echo "$out exists; keeping it (--force writes new passwords)" >&2
    exit 0
fi

# 24 random bytes as 48 hex digits: URL-safe, no quoting needed anywhere.
random() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

rabbitmq=$(random)
postgres=$(random)
redis=$(random)
mongodb=$(random)
grafana=$(random)

umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp" <<ENV
RABBITMQ_USERNAME=observatory
RABBITMQ_PASSWORD=$rabbitmq
POSTGRES_USER=observatory
POSTGRES_PASSWORD=$postgres
REDIS_PASSWORD=$redis
MONGODB_USERNAME=observatory
MONGODB_PASSWORD=$mongodb
GRAFANA_ADMIN_USER=admin
GRAFANA_ADMIN_PASSWORD=$grafana
OBSERVATORY_RABBITMQ_URL=amqp://observatory:$rabbitmq@rabbitmq:5672/%2f
OBSERVATORY_POSTGRES_URL=postgres://observatory:$postgres@postgresql:5432/observatory
OBSERVATORY_REDIS_URL=redis://:$redis@redis:6379
OBSERVATORY_MONGODB_URL=mongodb://observatory:$mongodb@mongodb:27017/?authSource=admin&directConnection=true
ENV
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
