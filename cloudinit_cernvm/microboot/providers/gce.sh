# shellcheck shell=sh
# GCE: every request carries "Metadata-Flavor: Google". Two requests: the
# user-data attribute as it is, and the instance directory read whole
# (?recursive=true, JSON) for id, hostname, zone, the user-data-encoding
# (base64 or none) and the ssh-keys attribute ("user:key" lines).

# GCE takes 256 KB a metadata value and 512 KB in all; the instance JSON
# holds them all again, escaped.
GCE_UD_MAX=524288
GCE_JSON_MAX=1048576

provider_fetch() {
    _b=$METADATA_URL/computeMetadata/v1/instance
    get "Metadata-Flavor: Google" user-data "$GCE_UD_MAX" "$_b/attributes/user-data" \
        instance "$GCE_JSON_MAX" "$_b/?recursive=true"
    got user-data && got instance || return 1
    json_pick "$WORK/instance" id=id hostname=hostname zone=zone \
        enc=attributes.user-data-encoding ssh-keys=attributes.ssh-keys || return 1
    value enc
    case $VALUE in
        '') ;;
        base64) b64 "$WORK/user-data" "$WORK/ud" "GCE user-data" || return 1
                mv -f "$WORK/ud" "$WORK/user-data" ;;
        *) log "GCE: unknown user-data-encoding $VALUE"; return 1 ;;
    esac
    value zone
    _zone=${VALUE##*/}
    md_file instance-id id
    md_file local-hostname hostname
    # "user:key" lines to md's public-keys lines as md_keys makes them, by
    # one awk: the attribute may be 256 KB, the shell reads a byte at a time.
    [ -s "$WORK/ssh-keys" ] && awk '{ sub(/\r$/, ""); sub(/^[^: ]*:/, "") }
        $0 !~ /^[ \t]*(#|$)/ { print "public-keys\t" $0 }' "$WORK/ssh-keys" >>"$WORK/md"
    md availability-zone "$_zone"
    md region "${_zone%-*}"
}
