# shellcheck shell=sh
# GCE: every request carries "Metadata-Flavor: Google". Two requests: the
# user-data attribute as it is, and the instance directory read whole
# (?recursive=true, JSON) for id, hostname, zone, the user-data-encoding
# (base64 or none) and the ssh-keys attribute ("user:key" lines).
#
# vcycle's CernVM 3 images read the attribute cvm-user-data (base64, what
# amiconfig asked for); vcycle sets user-data always and adds cvm-user-data
# beside it only as a wrapper for CernVM 3's amiconfig. So user-data wins
# when both are set; cvm-user-data is taken, from the instance JSON already
# fetched, only when user-data is absent or empty.

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
        enc=attributes.user-data-encoding ssh-keys=attributes.ssh-keys \
        cvm-ud=attributes.cvm-user-data || return 1
    value enc
    if [ ! -s "$WORK/user-data" ] && [ -s "$WORK/cvm-ud" ]; then
        log "GCE: no user-data attribute; cvm-user-data (base64) instead"
        VALUE=cvm
    fi
    case $VALUE in
        '') ;;
        cvm) b64 "$WORK/cvm-ud" "$WORK/user-data" "GCE cvm-user-data" || return 1 ;;
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
