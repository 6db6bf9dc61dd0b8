# shellcheck shell=sh
# EC2: IMDSv2 (a token from PUT, sent with every GET); IMDSv1 only where the
# token request is not supported (404/405). The token, then in one curl run
# user-data, identity document (id, zone, region), hostname, first key and
# the list of network interfaces, with the keys that cloud-init's Ec2
# datasource renders network config from (ec2_network) for the machine's
# one interface, whose MAC the kernel knows (ec2_local_mac); only where the
# list holds others, a second run asks for the keys of each: 4 for one
# interface, 6 each for several. 10 requests with one interface (one curl
# run after the token), 18 with two.

EC2_UD_MAX=32768    # EC2 takes 16 KiB of user-data
EC2_MACS_MAX=32     # interfaces whose metadata is read (EC2 allows 15 a card)
# the keys of an interface that cloud-init's convert_ec2_metadata_network_config
# reads; with several interfaces also their order and policy routing's
EC2_NET_KEYS="device-number local-ipv4s ipv6s subnet-ipv4-cidr-block"
EC2_NET_MORE="network-card subnet-ipv6-cidr-blocks"
# a MAC address as IMDS lists it (lower-case hex; upper case taken too)
EC2_MAC='[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]'

provider_fetch() {
    _b=$METADATA_URL/latest
    _tok=
    http PUT "X-aws-ec2-metadata-token-ttl-seconds: 300" token "$HTTP_SMALL" "$_b/api/token" ||
        return 1
    got token
    _code=$CODE
    case $_code in
        200) value token; _tok="X-aws-ec2-metadata-token: $VALUE" ;;
        404|405) log "EC2: no IMDSv2 token (status $_code); IMDSv1" ;;
        # found by the probe, so maybe no AWS: a service that refuses the
        # token otherwise (400, 501...) is asked as IMDSv1; 403 is IMDS off
        403) log "EC2: token request: status 403 (IMDS turned off)"; return 1 ;;
        [45]??) if [ -z "${PROBED:-}" ]; then log "EC2: token request: status $_code"; return 1; fi
                log "EC2: no IMDSv2 token (status $_code); IMDSv1" ;;
        *) log "EC2: token request: status $_code"; return 1 ;;
    esac
    ec2_local_mac
    set --
    for _k in $EC2_NET_KEYS; do
        [ -n "$EC2_LOCAL_MAC" ] || break
        set -- "$@" "nd.1.$_k" "$HTTP_SMALL" "$_b/meta-data/network/interfaces/macs/$EC2_LOCAL_MAC/$_k"
    done
    get "$_tok" user-data "$EC2_UD_MAX" "$_b/user-data" \
        ident "$HTTP_SMALL" "$_b/dynamic/instance-identity/document" \
        hostname "$HTTP_SMALL" "$_b/meta-data/local-hostname" \
        key "$HTTP_SMALL" "$_b/meta-data/public-keys/0/openssh-key" \
        macs "$HTTP_SMALL" "$_b/meta-data/network/interfaces/macs/" "$@"
    got user-data || return 1
    md_json "$WORK/ident" instance-id=instanceId availability-zone=availabilityZone \
        region=region
    md_file local-hostname hostname
    md_keys "$WORK/key"
    md cernvm-probe "${PROBED:+$PROBED accepted a connection; no local evidence}"
    ec2_network "$_b/meta-data/network/interfaces/macs" "$_tok"
}

# ec2_local_mac: EC2_LOCAL_MAC, the MAC of the machine's one network
# interface (lo aside), as the kernel has it; empty when there are several
# or none (the interface list then decides alone).
ec2_local_mac() {
    EC2_LOCAL_MAC=
    set +f    # the stage runs with globbing off; the names are the kernel's
    set -- "$SYSROOT"/sys/class/net/*/address
    set -f
    for _a; do
        [ -r "$_a" ] || continue
        case $_a in */lo/address) continue ;; esac
        [ -z "$EC2_LOCAL_MAC" ] || { EC2_LOCAL_MAC=; return 0; }
        IFS= read -r EC2_LOCAL_MAC <"$_a" || EC2_LOCAL_MAC=
        # shellcheck disable=SC2254 # the pattern
        case $EC2_LOCAL_MAC in $EC2_MAC) ;; *) EC2_LOCAL_MAC= ;; esac
        [ -n "$EC2_LOCAL_MAC" ] || return 0
    done
    return 0
}

# ec2_network BASE HEADER: WORK/network-data from the interfaces listed in
# WORK/macs (BASE/MAC/KEY, each key of EC2_NET_KEYS), as JSON in the shape of
# the "network" item of cloud-init's Ec2 metadata: {"interfaces": {"macs":
# {MAC: {KEY: VALUE}}}}, a VALUE of several lines a list of them, as
# cloud-init's metadata reader makes it, a key the service has not (404)
# left out. Every value is an address, a prefix or a number: one with any
# other character makes no network-data (one line), as does an answer not
# had whole; neither costs the seed. Builtins only, no process but curl.
ec2_network() {
    got macs && [ "$CODE" = 200 ] && [ -s "$WORK/macs" ] || return 0
    _base=$1 _hdr=$2
    set --
    _keys=$EC2_NET_KEYS _i=0 _macs=
    while IFS= read -r _m || [ -n "$_m" ]; do
        case $_m in *[[:cntrl:]]) _m=${_m%?} ;; esac    # a CR
        _m=${_m%/}
        [ -n "$_m" ] || continue
        # shellcheck disable=SC2254 # the pattern
        case $_m in $EC2_MAC) ;; *)
            log "EC2: the interface list holds no MAC address; no network-data"; return 0 ;;
        esac
        _i=$((_i + 1))
        if [ "$_i" -gt "$EC2_MACS_MAX" ]; then
            log "EC2: more than $EC2_MACS_MAX interfaces; no network-data"; return 0
        fi
        _macs="$_macs $_m"
    done <"$WORK/macs"
    [ "$_i" -gt 1 ] && _keys="$_keys $EC2_NET_MORE"
    _i=0
    for _m in $_macs; do
        _i=$((_i + 1))
        for _k in $_keys; do set -- "$@" "nd.$_i.$_k" "$HTTP_SMALL" "$_base/$_m/$_k"; done
    done
    [ $# -gt 0 ] || return 0
    # the machine's one interface is the list's one: its keys came already
    if [ "$_macs" = " $EC2_LOCAL_MAC" ] && [ "$_keys" = "$EC2_NET_KEYS" ]; then
        set --
    fi
    [ $# -gt 0 ] && log "EC2: interfaces$_macs: their keys in a second run"
    if [ $# -gt 0 ] && ! get "$_hdr" "$@"; then
        log "EC2: interface metadata not had whole; no network-data"; return 0
    fi
    _json='{"interfaces": {"macs": {' _i=0 _sep=
    for _m in $_macs; do
        _i=$((_i + 1)) _items='' _isep=''
        for _k in $_keys; do
            got "nd.$_i.$_k" || { log "EC2: $_m/$_k: status $CODE; no network-data"; return 0; }
            [ "$CODE" = 200 ] || continue
            ec2_net_value "$WORK/nd.$_i.$_k" || {
                log "EC2: $_m/$_k: not an address, prefix or number; no network-data"; return 0; }
            _items="$_items$_isep\"$_k\": $VALUE" _isep=', '
        done
        _json="$_json$_sep\"$_m\": {$_items}" _sep=', '
    done
    printf '%s}}}\n' "$_json" >"$WORK/network-data"
}

# ec2_net_value FILE: FILE's value as JSON in VALUE: a string, or the list of
# its lines when it has a line end (cloud-init's MetadataLeafDecoder). Returns
# 1 for a character that no address, prefix or number has.
ec2_net_value() {
    VALUE='' _nl='' _vsep=''
    while IFS= read -r _l; do
        case $_l in *[!0-9a-fA-F.:/]*) return 1 ;; esac
        VALUE="$VALUE$_vsep\"$_l\"" _vsep=', ' _nl=1
    done <"$1"
    if [ -n "$_l" ]; then
        case $_l in *[!0-9a-fA-F.:/]*) return 1 ;; esac
        VALUE="$VALUE$_vsep\"$_l\""
    fi
    if [ -n "$_nl" ]; then VALUE="[$VALUE]"
    elif [ -z "$VALUE" ]; then VALUE='""'
    fi
    return 0
}
