# shellcheck shell=sh
# The last resort of recognition, after every rule: an EC2-compatible
# metadata service that the machine shows no local sign of (Vac's factories
# boot VMs under libvirt with no identifying DMI and answer EC2's paths on
# 169.254.169.254, as µCernVM found them: by probing). One TCP connect to
# METADATA_URL's host and port, within PROBE_S; no request is sent. Sourced,
# never run.
#
# The trade-off: every other provider is named by evidence of this machine
# alone; this one by whoever answers on that address. A machine with no
# metadata service loses at most PROBE_S; "cernvm.source=none" on the kernel
# command line skips the probe (a machine that must never take context from
# the network); the seed's meta-data says the probe found the service
# (cernvm-probe), so that what was taken on trust can be told apart.

PROBE_S=1

# probe_metadata: PROVIDER EC2 and EVIDENCE when the connect succeeds;
# PROBED is the HOST:PORT that answered. Returns 1 when it did not, or when
# the kernel command line says cernvm.source=none.
probe_metadata() {
    if cmdline_has cernvm.source none; then
        log "kernel command line has cernvm.source=none: no metadata service probed"
        return 1
    fi
    _hp=${METADATA_URL#*://}
    _hp=${_hp%%/*}
    _host=${_hp%:*} _port=80
    case $_hp in *:*) _port=${_hp##*:} ;; esac
    step "no local evidence; probing $_host:$_port"
    tcp_connect "$_host" "$_port" || { step "probe: nothing answers on $_host:$_port"; return 1; }
    step "probe: $_host:$_port accepts a connection"
    # shellcheck disable=SC2034 # read by fetch-context and providers/ec2.sh
    PROVIDER=EC2 PROBED=$_host:$_port \
        EVIDENCE="no local evidence, but $_host:$_port accepts a connection (probe)"
}

# tcp_connect HOST PORT: 0 when a TCP connection to HOST:PORT is made within
# PROBE_S. busybox nc connects with a time limit (-w) and, with -e, ends as
# soon as it is connected (it runs "true" in its place); a busybox whose nc
# lacks -e, or has no nc, asks curl: connect limit and whole-run limit both
# PROBE_S, the connect time telling a connection (then a GET of / is sent:
# curl cannot stop at the connect).
tcp_connect() {
    if command -v nc >/dev/null 2>&1; then
        nc -w "$PROBE_S" "$1" "$2" -e true </dev/null >/dev/null 2>"$WORK/probe.err" && return 0
        grep -q Usage "$WORK/probe.err" || return 1
    fi
    _tc=$(curl -q -s -o /dev/null --connect-timeout "$PROBE_S" --max-time "$PROBE_S" \
        -w '%{time_connect}' "http://$1:$2/" 2>/dev/null)
    case $_tc in ''|0|0.0|0.000000) return 1 ;; esac
    return 0
}
