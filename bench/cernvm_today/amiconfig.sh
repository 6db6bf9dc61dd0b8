#!/bin/bash
# `amiconfig.sh user` of a CernVM image today, for the boot benchmark: the
# user step of hepix/commands/amiconfig.sh (cernvm/amiconfig) re-implemented
# from its documented behaviour, with its own search for the user-data:
#
#   1. AMICONFIG_CONTEXT_URL in the environment: its file: (or /) directory's
#      user-data, or the URL's user-data fetched;
#   2. else CernVM Online's local copy, then EC2 (a 1 s TCP check of
#      169.254.169.254:80, then GET /2007-12-15//user-data), then CloudStack
#      (each dhclient lease's dhcp-server-identifier: 1 s check, then GET
#      /latest//user-data), then GCE (1 s check, then GET
#      .../attributes/cvm-user-data with X-Google-Metadata-Request, base64);
#      each download as wget -t2 -T20 does (two tries on a time-out, none on
#      an HTTP error); nothing found: "Can't retrieve any user data", exit 1;
#   3. gunzip, /cernvm/extra-user-data appended, the user-data's #! script
#      (sh.before) before amiconfig, after it the others, amiconfig itself
#      with AMICONFIG_LOCAL_USER_DATA and AMICONFIG_CONTEXT_URL set (it reads
#      its metadata keys there), then user.done.
#
# wget and nc are not in the benchmark's guest root: the TCP check is bash's
# /dev/tcp under `timeout`, a download is curl with wget's User-Agent and
# time-outs. On stderr, for the benchmark: "amiconfig.sh: request URL
# http-status N", "amiconfig.sh: timeout WHAT" for each time-out hit,
# "amiconfig.sh: retrieve MS ms", "amiconfig.sh: amiconfig MS ms exit N".
#
# For tests only: AMI_SERVER (169.254.169.254), AMI_PORT (80), AMI_STATE
# (/var/lib/amiconfig), AMI_ONLINE (/var/lib/amiconfig-online), AMI_LEASES
# (/var/lib/dhclient), AMI_EXTRA (/cernvm/extra-user-data), AMI_CHECK_TIMEOUT
# (1), AMI_DOWNLOAD_TIMEOUT (20), AMICONFIG (/usr/sbin/amiconfig).
set -u
SERVER=${AMI_SERVER:-169.254.169.254}
PORT=${AMI_PORT:-80}
STATE=${AMI_STATE:-/var/lib/amiconfig}
ONLINE=${AMI_ONLINE:-/var/lib/amiconfig-online}
LEASES=${AMI_LEASES:-/var/lib/dhclient}
EXTRA=${AMI_EXTRA:-/cernvm/extra-user-data}
CHECK_TIMEOUT=${AMI_CHECK_TIMEOUT:-1}
DOWNLOAD_TIMEOUT=${AMI_DOWNLOAD_TIMEOUT:-20}
TRIES=2
AMICONFIG=${AMICONFIG:-/usr/sbin/amiconfig}
DONE_USER=$STATE/user.done
WGET_AGENT="Wget/1.14 (linux-gnu)"

say() { echo "amiconfig.sh: $*" >&2; }
ms() { date +%s%3N; }

hostport() { if [ "$PORT" = 80 ]; then echo "$1"; else echo "$1:$PORT"; fi; }

# nc -w SEC HOST 80: can a TCP connection be opened within the check's time?
reachable() {
    timeout "$CHECK_TIMEOUT" bash -c ": > /dev/tcp/$1/$PORT" 2>/dev/null
    local rc=$?
    [ "$rc" -eq 124 ] && say "timeout check $1:$PORT"
    return "$rc"
}

# wget -tTRIES -TTIMEOUT -q -O - URL [HEADER]: the body on stdout.
wget_q() {
    local url=$1 header=${2:-} try=1 code rc out
    out=$(mktemp)
    while :; do
        code=$(curl -s -o "$out" -w '%{http_code}' -A "$WGET_AGENT" \
            --connect-timeout "$DOWNLOAD_TIMEOUT" --speed-time "$DOWNLOAD_TIMEOUT" \
            --speed-limit 1 ${header:+-H "$header"} "$url")
        rc=$?
        say "request $url http-status $code"
        [ "$rc" -eq 28 ] && say "timeout download $url"
        if [ "$rc" -eq 0 ] && [ "${code:0:1}" = 2 ]; then
            cat "$out"
            rm -f "$out"
            return 0
        fi
        # wget tries again after a time-out or a server error, not after 4xx
        if [ "$try" -ge "$TRIES" ] || { [ "$rc" -ne 28 ] && [ "${code:0:1}" != 5 ]; }; then
            rm -f "$out"
            return 1
        fi
        try=$((try + 1))
    done
}

retrieve_online() {
    [ -e "$ONLINE/2007-12-15/user-data" ] || return 1
    export AMICONFIG_CONTEXT_URL="file:$ONLINE/2007-12-15"
    export AMICONFIG_LOCAL_USER_DATA="$ONLINE/2007-12-15/user-data"
}

retrieve_ec2() {
    local local_dir="$STATE/2007-12-15/" remote data
    remote="http://$(hostport "$SERVER")/2007-12-15/"
    if [ -f "${local_dir}user-data" ]; then
        export AMICONFIG_LOCAL_USER_DATA="${local_dir}user-data"
        export AMICONFIG_CONTEXT_URL="$remote"
        return 0
    fi
    reachable "$SERVER" || return 1
    data=$(wget_q "${remote}/user-data") || return 1
    mkdir -p "$local_dir"
    echo "$data" > "${local_dir}user-data"
    chmod 0600 "${local_dir}user-data"
    export AMICONFIG_LOCAL_USER_DATA="${local_dir}user-data"
    export AMICONFIG_CONTEXT_URL="$remote"
}

retrieve_cloudstack() {
    local lease server data remote
    [ -d "$LEASES" ] || return 1
    for lease in "$LEASES"/*.leases; do
        [ -e "$lease" ] || continue
        server=$(grep dhcp-server-identifier "$lease" | tail -n 1)
        [[ "$server" =~ ([0-9.]+) ]] || continue
        server=${BASH_REMATCH[1]}
        reachable "$server" || continue
        remote="http://$(hostport "$server")/latest/"
        data=$(wget_q "${remote}/user-data") || continue
        [ -n "$data" ] || continue
        mkdir -p "$STATE/latest"
        echo "$data" > "$STATE/latest/user-data"
        chmod 0600 "$STATE/latest/user-data"
        export AMICONFIG_LOCAL_USER_DATA="$STATE/latest/user-data"
        export AMICONFIG_CONTEXT_URL="$remote"
        return 0
    done
    return 1
}

retrieve_gce() {
    local data url
    reachable "$SERVER" || return 1
    url="http://$(hostport "$SERVER")/computeMetadata/v1/instance/attributes/cvm-user-data"
    data=$(wget_q "$url" "X-Google-Metadata-Request: True") || return 1
    mkdir -p "$STATE/v1"
    echo "$data" | base64 -d > "$STATE/v1/user-data" 2>/dev/null
    chmod 0600 "$STATE/v1/user-data"
    export AMICONFIG_LOCAL_USER_DATA="$STATE/v1/user-data"
    export AMICONFIG_CONTEXT_URL="file:$STATE/v1"
}

retrieve() {
    if [ -n "${AMICONFIG_CONTEXT_URL:-}" ]; then
        if [ -z "${AMICONFIG_LOCAL_USER_DATA:-}" ]; then
            case "$AMICONFIG_CONTEXT_URL" in
            file:*) export AMICONFIG_LOCAL_USER_DATA="${AMICONFIG_CONTEXT_URL#file:}/user-data" ;;
            /*) export AMICONFIG_LOCAL_USER_DATA="$AMICONFIG_CONTEXT_URL/user-data" ;;
            *)
                mkdir -p "$STATE/custom"
                if wget_q "$AMICONFIG_CONTEXT_URL/user-data" > "$STATE/custom/user-data"; then
                    export AMICONFIG_LOCAL_USER_DATA="$STATE/custom/user-data"
                fi
                ;;
            esac
        fi
    else
        retrieve_online || retrieve_ec2 || retrieve_cloudstack || retrieve_gce \
            || say "no user-data from any standard source"
    fi
    local ud=${AMICONFIG_LOCAL_USER_DATA:-}
    if [ -n "$ud" ] && [ "$(head -c 2 "$ud" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
        gunzip < "$ud" > "$ud.0" 2>/dev/null && [ -s "$ud.0" ] && mv "$ud.0" "$ud"
        rm -f "$ud.0"
    fi
    if [ -r "$EXTRA" ]; then
        if [ -z "$ud" ]; then
            mkdir -p "$STATE/2007-12-15"
            export AMICONFIG_CONTEXT_URL="file:$STATE/2007-12-15"
            ud="$STATE/2007-12-15/user-data"
            export AMICONFIG_LOCAL_USER_DATA="$ud"
            echo '' > "$ud"
        fi
        cat "$EXTRA" >> "$ud"
    fi
    [ -n "$ud" ] && [ -r "$ud" ]
}

# The user-data's script for PHASE (before: #!...sh.before; after: the
# others), from its #! line to its `exit` line, run with its interpreter.
run_script() {
    local phase=$1 ud=$AMICONFIG_LOCAL_USER_DATA text script
    text=$(grep -v -e '^ *$' "$ud")
    [ -n "$text" ] || return 0
    [[ "$(head -n 1 <<< "$text")" == '#!'* ]] || return 0
    if [ "$phase" = before ]; then
        script=$(sed -n '/^#!.*sh.*before/,/^exit/p' <<< "$text")
    else
        script=$(sed -n '/^#!.*sh\(.*after\|$\)/,/^exit/p' <<< "$text")
    fi
    [ -n "$script" ] || return 0
    local file
    file=$(mktemp)
    sed -e '1s/^\(#!.*\) \(.*\)$/\1/' <<< "$script" > "$file"
    chmod +x "$file"
    "$file" >&2
    say "user-data script [$phase] exit code: $?"
    rm -f "$file"
}

[ "${1:-}" = user ] || { say "Usage: amiconfig.sh [user|hepix]"; exit 2; }
[ -e "$DONE_USER" ] && { say "Contextualization for user already run, skipping"; exit 0; }
t0=$(ms)
if ! retrieve; then
    say "retrieve $(($(ms) - t0)) ms"
    say "Can't retrieve any user data: aborting!"
    exit 1
fi
say "retrieve $(($(ms) - t0)) ms"
run_script before
t1=$(ms)
"$AMICONFIG" >&2
rc=$?
say "amiconfig $(($(ms) - t1)) ms exit $rc"
run_script after
mkdir -p "$(dirname "$DONE_USER")"
touch "$DONE_USER"
