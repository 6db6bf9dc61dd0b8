# shellcheck shell=sh
# Azure: CustomData (base64) from ovf-env.xml on the provisioning CD, or, as
# µCernVM read it, CustomData.bin on the UDF provisioning disk that holds the
# tag file AZURE_TAG; where there is no such disk, IMDS compute/userData
# (base64) with "Metadata: true". The disk's image is kept as azure.iso
# (Azure ejects it after provisioning; µCernVM kept it too).

AZURE_TAG=E6DA6616-8EC4-48E0-BE93-58CE6ACE3CFB.tag
AZURE_ISO_MAX=16777216    # the provisioning disk is well under 1 MiB

# azure_keep_image: MEDIA_DEV's bytes into WORK/azure.iso, up to AZURE_ISO_MAX.
azure_keep_image() {
    [ -r "$MEDIA_DEV" ] && [ ! -d "$MEDIA_DEV" ] || return 0
    head -c $((AZURE_ISO_MAX + 1)) "$MEDIA_DEV" >"$WORK/azure.iso" 2>/dev/null
    file_size "$WORK/azure.iso"
    if [ "$SIZE" -gt "$AZURE_ISO_MAX" ] || [ "$SIZE" = 0 ]; then
        log "Azure: the provisioning disk's image is empty or over $AZURE_ISO_MAX bytes: not kept"
        rm -f "$WORK/azure.iso"
    fi
    return 0
}

# azure_udf: user-data from CustomData.bin (as it is: no base64) on the disk
# with the tag file; none when the file is absent.
azure_udf() {
    log "Azure: $AZURE_TAG on the disk labelled \"$MEDIA_LABEL\""
    media_file CustomData.bin
    case $? in
        0) cat "$MEDIA_FILE" >"$WORK/user-data" ;;
        1) : >"$WORK/user-data" ;;
        *) return 1 ;;
    esac
    azure_keep_image
}

# xml_text TAG FILE: the text of the first element TAG (any namespace prefix).
xml_text() {
    tr -d '\r\n' <"$2" | sed -n "s#.*<\([A-Za-z0-9]*:\)\{0,1\}$1>\([^<]*\)</\([A-Za-z0-9]*:\)\{0,1\}$1>.*#\2#p"
}

AZURE_UD_MAX=131072    # Azure takes 64 KiB of user-data; IMDS gives it in base64

provider_fetch() {
    if media_find 'rd_rdfe_stable*' ovf-env.xml || media_find '*' ovf-env.xml; then
        log "Azure: ovf-env.xml on the disk labelled \"$MEDIA_LABEL\""
        media_file ovf-env.xml || return 1
        _ovf=$MEDIA_FILE
        xml_text CustomData "$_ovf" >"$WORK/custom"
        if [ -s "$WORK/custom" ]; then
            b64 "$WORK/custom" "$WORK/user-data" "Azure CustomData" || return 1
        else
            : >"$WORK/user-data"
        fi
        md local-hostname "$(xml_text HostName "$_ovf")"
        tr -d '\r\n' <"$_ovf" | sed 's#</\([A-Za-z0-9]*:\)\{0,1\}PublicKey>#&\n#g' |
            sed -n 's#.*<\([A-Za-z0-9]*:\)\{0,1\}Value>\([^<]*\)</.*#\2#p' >"$WORK/keys"
        md_keys "$WORK/keys"
        azure_keep_image
        return 0
    fi
    if media_find '*' "$AZURE_TAG"; then
        azure_udf
        return
    fi
    _b="$METADATA_URL/metadata/instance/compute"
    _q="api-version=2021-01-01&format=text"
    _h="Metadata: true"
    get "$_h" ud64 "$AZURE_UD_MAX" "$_b/userData?$_q" vmId "$HTTP_SMALL" "$_b/vmId?$_q" \
        name "$HTTP_SMALL" "$_b/name?$_q" location "$HTTP_SMALL" "$_b/location?$_q" \
        zone "$HTTP_SMALL" "$_b/zone?$_q"
    got ud64 || return 1
    b64 "$WORK/ud64" "$WORK/user-data" "Azure userData" || return 1
    md_file instance-id vmId
    md_file local-hostname name
    md_file availability-zone zone
    md_file region location
}
