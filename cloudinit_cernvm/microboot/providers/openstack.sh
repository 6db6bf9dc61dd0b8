# shellcheck shell=sh
# OpenStack metadata service: openstack/latest/user_data and meta_data.json.

# openstack_meta FILE: the seed's items from an OpenStack meta_data.json.
openstack_meta() {
    [ -s "$1" ] || return 0
    md_json "$1" instance-id=uuid local-hostname=hostname availability-zone=availability_zone
    json_obj_values public_keys "$1" >"$WORK/keys"
    md_keys "$WORK/keys"
}

provider_fetch() {
    _b=$METADATA_URL/openstack/latest
    get '' user-data "$_b/user_data" meta.json "$_b/meta_data.json"
    got user-data || return 1
    openstack_meta "$WORK/meta.json"
}
