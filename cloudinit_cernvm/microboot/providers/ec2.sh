# shellcheck shell=sh
# EC2: IMDSv2 (a token from PUT, sent with every GET); IMDSv1 only where the
# token request is not supported (404/405). Five requests in all: token,
# user-data, identity document (id, zone, region), hostname, first key.

EC2_UD_MAX=32768    # EC2 takes 16 KiB of user-data

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
    get "$_tok" user-data "$EC2_UD_MAX" "$_b/user-data" \
        ident "$HTTP_SMALL" "$_b/dynamic/instance-identity/document" \
        hostname "$HTTP_SMALL" "$_b/meta-data/local-hostname" \
        key "$HTTP_SMALL" "$_b/meta-data/public-keys/0/openssh-key"
    got user-data || return 1
    md_json "$WORK/ident" instance-id=instanceId availability-zone=availabilityZone \
        region=region
    md_file local-hostname hostname
    md_keys "$WORK/key"
    md cernvm-probe "${PROBED:+$PROBED accepted a connection; no local evidence}"
}
