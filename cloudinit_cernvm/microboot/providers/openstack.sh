# shellcheck shell=sh
# OpenStack metadata service: openstack/latest/user_data, meta_data.json and
# network_data.json (the seed's network-data, as given) and the site's
# vendor-data (vendor_data.json, vendor_data2.json), five requests in one
# curl run. No vendor-data (404: a cloud before Newton has no
# vendor_data2.json) is normal and said nowhere.

OPENSTACK_UD_MAX=131072      # Nova takes 64 KiB of user-data
OPENSTACK_META_MAX=262144    # meta_data.json: keys, 128 meta items, devices
OPENSTACK_NET_MAX=262144     # network_data.json: links, networks, services
OPENSTACK_VD_MAX=262144      # a vendor-data file: the site's cloud-config, like user-data

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
    # vendor-data and vendor-data2 land in WORK under their seed names, empty
    # when the service has none or they could not be had (get's log line)
    get '' user-data "$OPENSTACK_UD_MAX" "$_b/user_data" \
        meta.json "$OPENSTACK_META_MAX" "$_b/meta_data.json" \
        network-data "$OPENSTACK_NET_MAX" "$_b/network_data.json" \
        vendor-data "$OPENSTACK_VD_MAX" "$_b/vendor_data.json" \
        vendor-data2 "$OPENSTACK_VD_MAX" "$_b/vendor_data2.json"
    got user-data || return 1
    openstack_meta "$WORK/meta.json"
}
