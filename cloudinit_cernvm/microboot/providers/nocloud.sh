# shellcheck shell=sh
# NoCloud (libvirt, Proxmox, KubeVirt, cloud-localds), as cloud-init seeds
# it: a "ds=nocloud[-net];s=URL;h=HOST;i=ID" word in the SMBIOS system serial
# or on the kernel command line (the serial's settings win, as in cloud-init),
# else a disk labelled cidata/CIDATA. With a seed URL, user-data and
# meta-data come from it, one request each in one curl run (cloud-init's
# rule: "%s" in the URL stands for the file name, else the name is appended,
# after a "/" when the URL has neither one nor a query); file:// or a path
# reads a directory of this machine. vendor-data and network-config are not
# read: the seed has no place for them.
#
# meta-data is YAML or JSON. nocloud_meta picks instance-id, local-hostname
# and public-keys (a string, a list or a map of strings) out of the common
# shapes; the whole file goes into the seed's meta-data as well, base64 in
# nocloud-meta-data-base64, so that the datasource reads the rest with a YAML
# parser (and anything these shapes miss).

NOCLOUD_UD_MAX=1048576    # what the seed takes once unpacked (GZIP_CAP)
NOCLOUD_MD_MAX=65536      # meta-data: an id, a name, keys

provider_fetch() {
    NC_SEED='' NC_HOST='' NC_IID=''
    [ -n "${CMDLINE+set}" ] || { CMDLINE=; read -r CMDLINE <"$SYSROOT/proc/cmdline" 2>/dev/null; }
    nocloud_args "$CMDLINE"
    _serial=
    read -r _serial <"$SYSROOT/sys/class/dmi/id/product_serial" 2>/dev/null
    nocloud_args "$_serial"
    if [ -n "$NC_SEED" ]; then
        nocloud_seed_url "$NC_SEED" || return 1
    elif media_find cidata meta-data || media_find CIDATA meta-data; then
        log "NoCloud: the disk labelled \"$MEDIA_LABEL\""
        nocloud_disk || return 1
    else
        log "NoCloud: no seed URL (s=) and no disk labelled cidata holding meta-data"
        return 1
    fi
    if [ -s "$WORK/nc-meta" ]; then
        nocloud_meta "$WORK/nc-meta"
        md nocloud-meta-data-base64 "$(base64 "$WORK/nc-meta" | tr -d '\n')"
    fi
    # the kernel command line's (or serial's) h= and i= win over the file's
    md instance-id "$NC_IID"
    md local-hostname "$NC_HOST"
    return 0
}

# nocloud_args TEXT: NC_SEED, NC_HOST, NC_IID from the settings of a
# "ds=nocloud[-net];KEY=VALUE;..." word of TEXT (s= or seedfrom=, h=, i=).
nocloud_args() {
    for _w in $1; do
        case $_w in
            ds=nocloud|ds=nocloud-net) continue ;;
            'ds=nocloud;'*|'ds=nocloud-net;'*) _w=${_w#*;} ;;
            *) continue ;;
        esac
        while [ -n "$_w" ]; do
            _kv=${_w%%;*}
            case $_w in *';'*) _w=${_w#*;} ;; *) _w= ;; esac
            case $_kv in
                s=*|seedfrom=*) NC_SEED=${_kv#*=} ;;
                h=*|local-hostname=*) NC_HOST=${_kv#*=} ;;
                i=*|instance-id=*) NC_IID=${_kv#*=} ;;
            esac
        done
    done
}

# nocloud_seed_url URL: WORK/user-data and WORK/nc-meta from the seed URL.
nocloud_seed_url() {
    case $1 in
        *%s*) _ud=${1%%%s*}user-data${1#*%s} _md=${1%%%s*}meta-data${1#*%s} ;;
        */|*'?'*) _ud=${1}user-data _md=${1}meta-data ;;
        *) _ud=$1/user-data _md=$1/meta-data ;;
    esac
    case $1 in
        file://*|/*)
            nocloud_local "${_ud#file://}" user-data "$NOCLOUD_UD_MAX" &&
                nocloud_local "${_md#file://}" nc-meta "$NOCLOUD_MD_MAX"
            return ;;
        http://*|https://*)
            log "NoCloud: seed URL ${1%%\?*}"
            get '' user-data "$NOCLOUD_UD_MAX" "$_ud" nc-meta "$NOCLOUD_MD_MAX" "$_md"
            got user-data && got nc-meta ;;
        *) log "NoCloud: seed URL ${1%%[:/]*}: not http, https, file or a path; not read"
           return 1 ;;
    esac
}

# nocloud_local PATH NAME MAX: a file of this machine into WORK/NAME (none:
# empty); one over MAX bytes is refused.
nocloud_local() {
    : >"$WORK/$2"
    [ -e "$1" ] || return 0
    if [ ! -f "$1" ]; then log "NoCloud: $1 is no regular file; not read"; return 1; fi
    head -c $(($3 + 1)) "$1" >"$WORK/$2"
    file_size "$WORK/$2"
    [ "$SIZE" -le "$3" ] && return 0
    log "NoCloud: $1 is larger than $3 bytes: refused"
    return 1
}

# nocloud_disk: WORK/user-data and WORK/nc-meta from the cidata disk
# (media_file: regular files, no link out of the disk).
nocloud_disk() {
    for _f in user-data:user-data:$NOCLOUD_UD_MAX meta-data:nc-meta:$NOCLOUD_MD_MAX; do
        _max=${_f##*:} _f=${_f%:*}
        media_file "${_f%%:*}"
        case $? in
            0) nocloud_local "$MEDIA_FILE" "${_f#*:}" "$_max" || return 1 ;;
            1) : >"$WORK/${_f#*:}" ;;
            *) return 1 ;;
        esac
    done
}

# nocloud_meta FILE: md lines for instance-id, local-hostname and
# public-keys of a YAML or JSON meta-data file, by one awk.
nocloud_meta() {
    awk "$NOCLOUD_META_AWK" "$1" >>"$WORK/md"
}

# The reader. JSON (the first character that is no blank is "{"): the file
# as one string, each wanted key's value found after '"KEY":'. YAML: the
# top-level "KEY: VALUE" lines (quoted or plain, a " #" comment cut), and
# under public-keys the indented "- KEY" or "NAME: KEY" lines, a flow list
# "[a, b]", or a block scalar (| or >: one key a line).
# shellcheck disable=SC2016 # awk's own $0
NOCLOUD_META_AWK='
function out(k, v) { if (v != "") printf "%s\t%s\n", k, v }
function unq(v) {    # a YAML scalar: quotes undone, a plain one cut at " #"
    sub(/^[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v)
    if (v ~ /^".*"$/) { v = substr(v, 2, length(v) - 2); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v); return v }
    if (v ~ /^'\''.*'\''$/) { v = substr(v, 2, length(v) - 2); gsub(/'\'''\''/, "'\''", v); return v }
    sub(/[ \t]+#.*$/, "", v)
    return v
}
function jstr(s,   v) {    # the JSON string at the start of s (escapes of keys and names)
    if (!match(s, /^"([^"\\]|\\.)*"/)) return ""
    v = substr(s, 2, RLENGTH - 2); rest = substr(s, RLENGTH + 1)
    gsub(/\\n/, "\n", v); gsub(/\\t/, "\t", v); gsub(/\\\//, "/", v); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v)
    return v
}
function jvalues(k,   s, v, endc) {    # every string value of KEY: string, list, map
    if (!match(all, "\"" k "\"[ \t\r\n]*:[ \t\r\n]*")) return
    s = substr(all, RSTART + RLENGTH)
    if (s ~ /^"/) { out(k, jstr(s)); return }
    if (s !~ /^[\[{]/) return
    endc = substr(s, 1, 1) == "[" ? "]" : "}"
    s = substr(s, 2)
    while (1) {
        sub(/^[ \t\r\n,]+/, "", s)
        if (s == "" || substr(s, 1, 1) == endc) return
        if (substr(s, 1, 1) != "\"") return
        v = jstr(s); s = rest
        if (endc == "}") {    # a key: its value is the next string
            sub(/^[ \t\r\n]*:[ \t\r\n]*/, "", s)
            if (substr(s, 1, 1) != "\"") return
            v = jstr(s); s = rest
        }
        out(k, v)
    }
}
NR == 1 { sub(/^\357\273\277/, "") }    # a BOM
{ all = all $0 "\n" }
!json && !yaml && $0 !~ /^[ \t\r]*(#|$)/ { if ($0 ~ /^[ \t]*\{/) json = 1; else yaml = 1 }
json { next }
/^[^ \t#-][^:]*:([ \t]|$)/ {    # a top-level key
    key = $0; sub(/:([ \t].*)?$/, "", key); key = unq(key)
    val = substr($0, index($0, ":") + 1)
    inkeys = 0; block = 0
    if (key == "instance-id" || key == "local-hostname") { out(key, unq(val)); next }
    if (key != "public-keys") next
    val = unq(val)
    if (val == "") { inkeys = 1; next }
    if (val ~ /^[|>]/) { inkeys = 1; block = 1; next }
    if (val ~ /^\[/) {
        val = substr(val, 2); sub(/\][ \t]*$/, "", val)
        n = split(val, item, ",")
        for (i = 1; i <= n; i++) out("public-keys", unq(item[i]))
        next
    }
    out("public-keys", val)
    next
}
inkeys && /^[ \t]+[^ \t]/ {
    v = $0
    if (block) { sub(/^[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v); out("public-keys", v); next }
    if (v ~ /^[ \t]+- /) { sub(/^[ \t]+- /, "", v); out("public-keys", unq(v)); next }
    if (v ~ /^[ \t]+[^ \t:]+:[ \t]/) { sub(/^[ \t]+[^ \t:]+:[ \t]+/, "", v); out("public-keys", unq(v)); next }
    next
}
/^[^ \t]/ { inkeys = 0 }
END {
    if (!json) exit
    jvalues("instance-id"); jvalues("local-hostname"); jvalues("public-keys")
}'
