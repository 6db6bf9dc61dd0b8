# shellcheck shell=sh
# GCE: every request carries "Metadata-Flavor: Google". Two requests: the
# user-data attribute as it is, and the instance directory read whole
# (?recursive=true, JSON) for id, hostname, zone, the user-data-encoding
# (base64 or none) and the ssh-keys attribute ("user:key" lines).

provider_fetch() {
    _b=$METADATA_URL/computeMetadata/v1/instance
    get "Metadata-Flavor: Google" user-data "$_b/attributes/user-data" \
        instance "$_b/?recursive=true"
    got user-data && got instance || return 1
    _j=$WORK/gce
    json_files "$WORK/instance" "$_j"
    _enc=
    [ -r "$_j/attributes.user-data-encoding" ] && _enc=$(cat "$_j/attributes.user-data-encoding")
    case $_enc in
        '') ;;
        base64) b64 "$WORK/user-data" "$WORK/ud" "GCE user-data" || return 1
                mv -f "$WORK/ud" "$WORK/user-data" ;;
        *) log "GCE: unknown user-data-encoding $_enc"; return 1 ;;
    esac
    for _item in id hostname zone; do
        [ -r "$_j/$_item" ] && cp "$_j/$_item" "$WORK/$_item"
    done
    value zone
    _zone=${VALUE##*/}
    md_file instance-id id
    md_file local-hostname hostname
    if [ -r "$_j/attributes.ssh-keys" ]; then
        sed 's/^[^: ]*://' "$_j/attributes.ssh-keys" >"$WORK/keys.plain"
        md_keys "$WORK/keys.plain"
    fi
    md availability-zone "$_zone"
    md region "${_zone%-*}"
}
