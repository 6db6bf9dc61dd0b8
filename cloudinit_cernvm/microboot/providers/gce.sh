# shellcheck shell=sh
# GCE: every request carries "Metadata-Flavor: Google"; user-data may be
# base64 as its user-data-encoding attribute says. Keys are "user:key".

provider_fetch() {
    _b=$METADATA_URL/computeMetadata/v1/instance
    _h="Metadata-Flavor: Google"
    get "$_h" user-data "$_b/attributes/user-data" \
        encoding "$_b/attributes/user-data-encoding" \
        id "$_b/id" hostname "$_b/hostname" zone "$_b/zone" \
        keys "$_b/attributes/ssh-keys"
    got user-data && got encoding || return 1
    value encoding
    case $VALUE in
        '') ;;
        base64) b64 "$WORK/user-data" "$WORK/ud" "GCE user-data" || return 1
                mv -f "$WORK/ud" "$WORK/user-data" ;;
        *) log "GCE: unknown user-data-encoding $VALUE"; return 1 ;;
    esac
    value zone
    _zone=$VALUE
    _zone=${_zone##*/}
    md_file instance-id id
    md_file local-hostname hostname
    sed 's/^[^: ]*://' "$WORK/keys" >"$WORK/keys.plain"
    md_keys "$WORK/keys.plain"
    md availability-zone "$_zone"
    md region "${_zone%-*}"
}
