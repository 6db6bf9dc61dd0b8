# shellcheck shell=sh
# OpenStack config drive: a disk labelled config-2 with openstack/latest/.
# shellcheck source=cloudinit_cernvm/microboot/providers/openstack.sh
. "$MB_DIR/providers/openstack.sh"

provider_fetch() {
    media_find config-2 openstack || media_find CONFIG-2 openstack || {
        log "ConfigDrive: no disk labelled config-2 holding openstack/"; return 1; }
    _d=$MEDIA/openstack/latest
    if [ -f "$_d/user_data" ]; then cp "$_d/user_data" "$WORK/user-data"; else : >"$WORK/user-data"; fi
    openstack_meta "$_d/meta_data.json"
}
