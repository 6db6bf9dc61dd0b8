# shellcheck shell=sh
# OpenStack config drive: a disk labelled config-2 with openstack/latest/.
# shellcheck source=cloudinit_cernvm/microboot/providers/openstack.sh
. "$MB_DIR/providers/openstack.sh"

provider_fetch() {
    media_find config-2 openstack || media_find CONFIG-2 openstack || {
        log "ConfigDrive: no disk labelled config-2 holding openstack/"; return 1; }
    # each file a regular one on the disk (media_file), never a link out of it
    media_file openstack/latest/user_data
    case $? in
        0) cat "$MEDIA_FILE" >"$WORK/user-data" ;;
        1) : >"$WORK/user-data" ;;
        *) return 1 ;;
    esac
    media_file openstack/latest/meta_data.json && openstack_meta "$MEDIA_FILE"
    media_file openstack/latest/network_data.json && configdrive_network "$MEDIA_FILE"
    return 0
}

# configdrive_network FILE: FILE as WORK/network-data, unless over its cap.
configdrive_network() {
    head -c $((OPENSTACK_NET_MAX + 1)) "$1" >"$WORK/network-data"
    file_size "$WORK/network-data"
    [ "$SIZE" -le "$OPENSTACK_NET_MAX" ] && return 0
    log "network_data.json: more than $OPENSTACK_NET_MAX bytes: not taken"
    rm -f "$WORK/network-data"
}
