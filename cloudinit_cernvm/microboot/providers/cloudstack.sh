# shellcheck shell=sh
# CloudStack: its config drive (cloudstack/userdata, cloudstack/metadata),
# else the virtual router, which is the DHCP server named in
# /var/lib/dhcp-server (written by µCernVM's udhcpc script).

# The router's user-data: at most vm.userdata.max.length (32 KiB by
# default, 1 MiB at most) of base64, served decoded; keys, a line each.
CLOUDSTACK_UD_MAX=1048576
CLOUDSTACK_KEYS_MAX=65536

provider_fetch() {
    if media_find config-2 cloudstack || media_find CONFIG-2 cloudstack; then
        # each file a regular one on the disk (media_file), never a link out of it
        media_file cloudstack/userdata/user_data.txt
        case $? in
            0) cat "$MEDIA_FILE" >"$WORK/user-data" ;;
            1) : >"$WORK/user-data" ;;
            *) return 1 ;;
        esac
        for _item in instance-id local-hostname public-keys availability-zone; do
            media_file "cloudstack/metadata/$_item.txt" && cat "$MEDIA_FILE" >"$WORK/$_item"
        done
    else
        _router=
        read -r _router <"$SYSROOT/var/lib/dhcp-server" 2>/dev/null
        [ -n "$_router" ] || { log "CloudStack: no config drive and no DHCP server known"; return 1; }
        _b="http://$_router/latest"
        # Three requests: the router has one file per item and no document;
        # the host name comes from DHCP on CloudStack anyway.
        get '' user-data "$CLOUDSTACK_UD_MAX" "$_b/user-data" \
            instance-id "$HTTP_SMALL" "$_b/meta-data/instance-id" \
            public-keys "$CLOUDSTACK_KEYS_MAX" "$_b/meta-data/public-keys"
        got user-data || return 1
    fi
    for _item in instance-id local-hostname; do
        [ -f "$WORK/$_item" ] && md_file "$_item" "$_item"
    done
    md_keys "$WORK/public-keys"
    [ -f "$WORK/availability-zone" ] && md_file availability-zone availability-zone
    return 0
}
