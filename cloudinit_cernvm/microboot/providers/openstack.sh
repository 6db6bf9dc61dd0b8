# shellcheck shell=sh
# OpenStack metadata service: openstack/latest/user_data, meta_data.json and
# network_data.json (the seed's network-data, as given), in one curl run.

OPENSTACK_UD_MAX=131072      # Nova takes 64 KiB of user-data
OPENSTACK_META_MAX=262144    # meta_data.json: keys, 128 meta items, devices
OPENSTACK_NET_MAX=262144     # network_data.json: links, networks, services

# openstack_meta FILE: the seed's items from an OpenStack meta_data.json.
openstack_meta() {
    [ -s "$1" ] || return 0
    json_pick "$1" md.instance-id=uuid md.local-hostname=hostname \
        md.availability-zone=availability_zone keys=public_keys.* || return 0
    md_file instance-id md.instance-id
    md_file local-hostname md.local-hostname
    md_file availability-zone md.availability-zone
    md_keys "$WORK/keys"
}

provider_fetch() {
    _b=$METADATA_URL/openstack/latest
    get '' user-data "$OPENSTACK_UD_MAX" "$_b/user_data" \
        meta.json "$OPENSTACK_META_MAX" "$_b/meta_data.json" \
        network-data "$OPENSTACK_NET_MAX" "$_b/network_data.json"
    got user-data || return 1
    openstack_meta "$WORK/meta.json"
}
