# shellcheck shell=sh
# OpenStack config drive: a disk labelled config-2 with openstack/latest/:
# user_data, meta_data.json, network_data.json, and the site's
# vendor_data.json and vendor_data2.json (each may be absent).
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
    configdrive_file network_data.json network-data "$OPENSTACK_NET_MAX"
    configdrive_file vendor_data.json vendor-data "$OPENSTACK_VD_MAX"
    configdrive_file vendor_data2.json vendor-data2 "$OPENSTACK_VD_MAX"
    return 0
}

# configdrive_file NAME SEEDNAME MAX: openstack/latest/NAME into WORK/SEEDNAME,
# at most MAX bytes (a larger one is not taken: one line).
configdrive_file() {
    media_file "openstack/latest/$1" || return 0
    head -c $(($3 + 1)) "$MEDIA_FILE" >"$WORK/$2"
    file_size "$WORK/$2"
    [ "$SIZE" -le "$3" ] && return 0
    log "ConfigDrive: $1: more than $3 bytes: not taken"
    rm -f "$WORK/$2"
}
