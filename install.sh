#!/usr/bin/env bash
# Install or upgrade Pforte on Debian 12 or Ubuntu 22.04+ from this copy of the repository.
#
#   sudo ./install.sh [--host ADDR] [--port N] [--database-url URL] [--redis-url URL]
#   ./install.sh --no-systemd --prefix DIR      # unprivileged, everything under DIR (containers, tests)
#
# Default layout: code in /opt/pforte (virtual environment in /opt/pforte/venv, command /opt/pforte/bin/pforte,
# linked to /usr/local/bin/pforte), data in /var/lib/pforte, settings in /etc/pforte/pforte.env and
# /etc/pforte/pforte.toml, systemd unit pforte.service running as the system user `pforte`.
# With --prefix DIR the data go to DIR/var and the settings to DIR/etc unless --state-dir/--config-dir say
# otherwise. Running the script again upgrades in place: data, secrets and settings are kept, migrations
# are applied, the service is restarted. Uninstalling: docs/operations.md.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEFAULT_PREFIX=/opt/pforte
PREFIX=$DEFAULT_PREFIX
STATE_DIR=""
CONF_DIR=""
OPT_HOST=""
OPT_PORT=""
OPT_DATABASE_URL=""
OPT_REDIS_URL=""
OPT_USER=""
SYSTEMD=1
SERVICE=pforte

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --port N              port to listen on (default 8080)
  --database-url URL    e.g. postgresql+psycopg://pforte:secret@db.example/pforte (default: SQLite)
  --redis-url URL       rate-limit storage for several processes, e.g. redis://127.0.0.1:6379/0
  --prefix DIR          install the code into DIR (default /opt/pforte)
  --state-dir DIR       data folder (default /var/lib/pforte, or DIR/var with --prefix)
  --config-dir DIR      settings folder (default /etc/pforte, or DIR/etc with --prefix)
  --user NAME           user the server runs as (default: pforte with systemd, else the caller)
  --no-systemd          do not install or start a systemd unit (containers, tests)
  -h, --help            this text
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  opt=$1
  case "$opt" in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
  esac
  case "$opt" in
    --host|--port|--prefix|--database-url|--redis-url|--state-dir|--config-dir|--user)
      [ $# -ge 2 ] || die "$opt needs a value"
      case "$opt" in
        --host) OPT_HOST=$2 ;;
        --port) OPT_PORT=$2 ;;
        --prefix) PREFIX=$2 ;;
        --database-url) OPT_DATABASE_URL=$2 ;;
        --redis-url) OPT_REDIS_URL=$2 ;;
        --state-dir) STATE_DIR=$2 ;;
        --config-dir) CONF_DIR=$2 ;;
        --user) OPT_USER=$2 ;;
      esac
      shift 2 ;;
    --no-systemd) SYSTEMD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $opt" ;;
  esac
done

if [ -n "$OPT_PORT" ]; then
  case "$OPT_PORT" in ''|*[!0-9]*) die "--port must be a number" ;; esac
  [ "$OPT_PORT" -ge 1 ] && [ "$OPT_PORT" -le 65535 ] || die "--port must be between 1 and 65535"
fi
for value in "$OPT_HOST" "$OPT_DATABASE_URL" "$OPT_REDIS_URL"; do
  case "$value" in *"'"*|*$'\n'*) die "option values must not contain quotes or line breaks" ;; esac
done
case "$OPT_DATABASE_URL" in ''|sqlite:*|postgresql+psycopg://*) ;;
  postgres://*|postgresql://*) die "--database-url: write postgresql+psycopg://… (the driver Pforte uses)" ;;
  *) die "--database-url must be postgresql+psycopg://… or sqlite:///…" ;; esac
case "$OPT_REDIS_URL" in ''|redis://*|rediss://*|unix://*) ;; *) die "--redis-url must start with redis://" ;; esac

mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
if [ "$PREFIX" = "$DEFAULT_PREFIX" ]; then
  STATE_DIR=${STATE_DIR:-/var/lib/pforte}
  CONF_DIR=${CONF_DIR:-/etc/pforte}
else
  STATE_DIR=${STATE_DIR:-$PREFIX/var}
  CONF_DIR=${CONF_DIR:-$PREFIX/etc}
fi
VENV=$PREFIX/venv
ENV_FILE=$CONF_DIR/pforte.env
TOML_FILE=$CONF_DIR/pforte.toml
IS_ROOT=0; [ "$(id -u)" -eq 0 ] && IS_ROOT=1

if [ "$SYSTEMD" -eq 1 ] && [ "$IS_ROOT" -eq 0 ]; then
  die "run as root to install the systemd service, or pass --no-systemd --prefix DIR for a user install"
fi
if [ -n "$OPT_USER" ]; then
  RUN_USER=$OPT_USER
elif [ "$SYSTEMD" -eq 1 ]; then
  RUN_USER=pforte
else
  RUN_USER=$(id -un)
fi
[ "$IS_ROOT" -eq 1 ] || [ "$RUN_USER" = "$(id -un)" ] || die "--user needs root"

# --- system packages -------------------------------------------------------------------------------
python_ok() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    python_ok "$PYTHON" && { echo "$PYTHON"; return; }
    die "PYTHON=$PYTHON is not Python 3.11+ with venv"
  fi
  for candidate in /usr/bin/python3 /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 \
                   "$(command -v python3 || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && python_ok "$candidate" && { echo "$candidate"; return; }
  done
  return 1
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ "$IS_ROOT" -eq 1 ] && command -v apt-get >/dev/null; then
  apt_install ca-certificates python3 python3-venv
  if ! find_python >/dev/null; then
    # Ubuntu 22.04 ships Python 3.10; 3.11 is in its universe component.
    apt_install python3.11 python3.11-venv
  fi
fi
PY=$(find_python) || die "Python 3.11 or newer with the venv module is needed (Debian/Ubuntu: python3-venv)"

# --- user and folders ------------------------------------------------------------------------------
if [ "$IS_ROOT" -eq 1 ] && ! id -u "$RUN_USER" >/dev/null 2>&1; then
  say "Creating system user $RUN_USER"
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
    --comment "Pforte gateway" "$RUN_USER"
fi
RUN_GROUP=$(id -gn "$RUN_USER")
mkdir -p "$STATE_DIR" "$CONF_DIR" "$PREFIX/bin"
chmod 0750 "$STATE_DIR" "$CONF_DIR"
if [ "$IS_ROOT" -eq 1 ]; then
  chown "$RUN_USER:$RUN_GROUP" "$STATE_DIR"
  chown "root:$RUN_GROUP" "$CONF_DIR"
fi

# --- stop a running service before its code is replaced ---------------------------------------------
HAVE_SYSTEMD=0
if [ "$SYSTEMD" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  HAVE_SYSTEMD=1
fi
if [ "$HAVE_SYSTEMD" -eq 1 ] && systemctl is-active --quiet "$SERVICE"; then
  say "Stopping the running service for the upgrade"
  systemctl stop "$SERVICE"
fi

# --- code ------------------------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"  # broken (e.g. the system Python it pointed at was replaced)
fi
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print(sys.version_info[:2])')" != \
     "$("$PY" -c 'import sys; print(sys.version_info[:2])')" ]; then
  rm -rf "$VENV"  # another Python version: start a fresh environment
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "Creating the virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
# Build from a clean copy so that the checkout gets no build/ or egg-info folders.
mkdir "$BUILD/src"
for item in pyproject.toml README.md app templates static migrations; do
  cp -R "$SRC_DIR/$item" "$BUILD/src/"
done
find "$BUILD/src" -name __pycache__ -type d -prune -exec rm -rf {} +
say "Installing Pforte $(sed -n 's/^version = "\(.*\)"/\1/p' "$SRC_DIR/pyproject.toml" | head -1) into $VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
"${PIP[@]}" wheel --no-deps --wheel-dir "$BUILD/wheel" "$BUILD/src"
WHEEL=$(ls "$BUILD"/wheel/pforte-*.whl)
# The package itself is always replaced (an upgrade may keep the version number); its dependencies
# only when the new version needs newer ones.
"${PIP[@]}" install --force-reinstall --no-deps "$WHEEL"
"${PIP[@]}" install "$WHEEL[postgres,redis]"

cat > "$PREFIX/bin/pforte" <<EOF
#!/bin/sh
# The pforte command with the installed settings; run by root it switches to the service user so that
# the files it creates belong to the server.
set -a
. '$ENV_FILE'
set +a
if [ "\$(id -u)" = 0 ] && [ '$RUN_USER' != root ]; then
  exec runuser -u '$RUN_USER' -- '$VENV/bin/pforte' "\$@"
fi
exec '$VENV/bin/pforte' "\$@"
EOF
chmod 0755 "$PREFIX/bin/pforte"
if [ "$IS_ROOT" -eq 1 ] && [ "$PREFIX" = "$DEFAULT_PREFIX" ]; then
  ln -sf "$PREFIX/bin/pforte" /usr/local/bin/pforte
fi

# --- settings --------------------------------------------------------------------------------------
# pforte.env holds what the service and the command need; lines added by hand are kept. Options given
# now replace the values they name; values not given keep what the file says.
SET_PFORTE_INSTANCE_PATH=$STATE_DIR SET_PFORTE_HOST=$OPT_HOST SET_PFORTE_PORT=$OPT_PORT \
SET_PFORTE_DATABASE_URL=$OPT_DATABASE_URL SET_PFORTE_RATELIMIT_STORAGE_URI=$OPT_REDIS_URL \
"$VENV/bin/python" - "$ENV_FILE" <<'EOF'
import os, sys
path = sys.argv[1]
names = ("PFORTE_INSTANCE_PATH", "PFORTE_HOST", "PFORTE_PORT", "PFORTE_DATABASE_URL",
         "PFORTE_RATELIMIT_STORAGE_URI")
wanted = {name: os.environ.get("SET_" + name, "") for name in names}
defaults = {"PFORTE_HOST": "127.0.0.1", "PFORTE_PORT": "8080"}
lines = open(path).read().splitlines() if os.path.exists(path) else [
    "# Pforte settings for the service and the pforte command (KEY='value' lines).",
    "# install.sh keeps this file on upgrades and only changes the values named by its options.",
    "# More settings: pforte.toml beside this file, or further PFORTE_* lines here (docs/operations.md).",
]
seen = set()
for i, line in enumerate(lines):
    name = line.split("=", 1)[0].strip()
    if name in wanted and not line.lstrip().startswith("#"):
        seen.add(name)
        if wanted[name]:
            lines[i] = f"{name}='{wanted[name]}'"
for name, value in wanted.items():
    value = value or defaults.get(name, "")
    if name not in seen and value:
        lines.append(f"{name}='{value}'")
tmp = path + ".tmp"
with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as fh:
    fh.write("\n".join(lines) + "\n")
os.replace(tmp, path)
EOF
if [ ! -e "$TOML_FILE" ]; then
  cat > "$TOML_FILE" <<'EOF'
# Pforte settings (TOML). PFORTE_* variables in pforte.env win over these. Names are the variables'
# without the PFORTE_ prefix, in lower case. Examples:
#
# trusted_proxies = "127.0.0.1/32"        # nginx on this host: believe its X-Forwarded-For
# ratelimit_per_ip = "60/minute"
# shutdown_grace_seconds = 30             # how long running streams may finish on stop
# log_json = true                         # one JSON object per log line
# metrics_allow = "127.0.0.1/32,::1/128"  # who may read /metrics and /readyz
# metrics_token = ""                      # or a bearer token for them
EOF
  chmod 0640 "$TOML_FILE"
fi
if [ "$IS_ROOT" -eq 1 ]; then
  chown "root:$RUN_GROUP" "$ENV_FILE" "$TOML_FILE"
fi
if [ ! -e "$STATE_DIR/pforte.toml" ] && [ ! -L "$STATE_DIR/pforte.toml" ]; then
  ln -s "$TOML_FILE" "$STATE_DIR/pforte.toml"  # the application reads pforte.toml in its data folder
fi

# --- secrets and database --------------------------------------------------------------------------
say "Creating secrets and applying database migrations"
INIT_OUTPUT=$("$PREFIX/bin/pforte" init 2>&1) || { echo "$INIT_OUTPUT" >&2; die "pforte init failed"; }
echo "$INIT_OUTPUT" | grep -v '^INFO  \[alembic' || true

get_setting() {  # the value pforte.env holds for $1
  sed -n "s/^$1='\(.*\)'\$/\1/p" "$ENV_FILE" | tail -1
}
HOST=$(get_setting PFORTE_HOST)
PORT=$(get_setting PFORTE_PORT)
case "$HOST" in
  0.0.0.0|::|'') SHOW_HOST=$(hostname -I 2>/dev/null | awk '{print $1}'); SHOW_HOST=${SHOW_HOST:-$(hostname)} ;;
  *:*) SHOW_HOST="[$HOST]" ;;
  *) SHOW_HOST=$HOST ;;
esac
URL="http://$SHOW_HOST:$PORT/"

# --- service ---------------------------------------------------------------------------------------
# The stop timeout follows the effective shutdown grace (pforte.env wins over pforte.toml). After changing
# that setting, run install.sh again (or edit TimeoutStopSec) so that systemd waits long enough.
GRACE=$("$PREFIX/bin/pforte" setting shutdown_grace_seconds 2>/dev/null | tail -1) || GRACE=""
case "$GRACE" in ''|*[!0-9]*) GRACE=30 ;; esac
# The unit is always rendered beside the code (a reference for --no-systemd installs) and, with systemd,
# installed as /etc/systemd/system/pforte.service.
UNIT_FILE=$PREFIX/$SERVICE.service
cat > "$UNIT_FILE" <<EOF
[Unit]
Description=Pforte language-model gateway
After=network-online.target postgresql.service redis-server.service
Wants=network-online.target

[Service]
Type=simple
User=$RUN_USER
Group=$RUN_GROUP
EnvironmentFile=$ENV_FILE
WorkingDirectory=$STATE_DIR
ExecStart=$VENV/bin/pforte serve
KillSignal=SIGTERM
TimeoutStopSec=$((GRACE + 20))
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
ReadWritePaths=$STATE_DIR
UMask=0027

[Install]
WantedBy=multi-user.target
EOF
if [ "$SYSTEMD" -eq 1 ]; then
  install -m 0644 "$UNIT_FILE" "/etc/systemd/system/$SERVICE.service"
  if [ "$HAVE_SYSTEMD" -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable --quiet "$SERVICE"
    systemctl restart "$SERVICE"
    say "Waiting for the service to answer"
    for _ in $(seq 1 60); do
      if "$VENV/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
           "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
        break
      fi
      sleep 0.5
    done
    systemctl is-active --quiet "$SERVICE" || die "the service did not start; see: journalctl -u $SERVICE"
  else
    echo "Note: systemd is not running here; the unit was written but not started." >&2
  fi
fi

echo
echo "Pforte is installed."
echo "  Code:      $PREFIX (command: $PREFIX/bin/pforte)"
echo "  Data:      $STATE_DIR"
echo "  Settings:  $ENV_FILE, $TOML_FILE"
if [ "$SYSTEMD" -eq 1 ]; then
  echo "  Service:   systemctl status $SERVICE · journalctl -u $SERVICE"
else
  echo "  Start it:  $PREFIX/bin/pforte serve (a systemd unit for it: $UNIT_FILE)"
fi
echo "  URL:       $URL"
TOKEN=$(echo "$INIT_OUTPUT" | sed -n 's/^Setup token: //p')
if [ -n "$TOKEN" ]; then
  echo "  Open ${URL}setup and enter the setup token: $TOKEN"
fi
