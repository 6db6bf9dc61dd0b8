# shellcheck shell=sh
# OpenNebula and the HEPiX context CD: context.sh, read as data (sh quoting
# undone by a parser; it is never sourced or run). User-data from USER_DATA
# or USERDATA (USERDATA_ENCODING base64), else CernVM's EC2_USER_DATA
# (base64); instance-id from VMID; keys from SSH_PUBLIC_KEY and ROOT_PUBKEY
# (a file on the CD).

# context_vars FILE PREFIX: each NAME=value assignment of FILE as the file
# PREFIXNAME holding the value (single and double quotes, backslashes, "export"
# understood; $(...), `...` and $VAR kept as text, never run; other lines
# skipped).
context_vars() {
    awk -v prefix="$2" '
        { s = s $0 "\n" }
        END {
            n = length(s); i = 1
            while (i <= n) {
                c = substr(s, i, 1)
                if (c == " " || c == "\t" || c == "\n" || c == ";") { i++; continue }
                if (substr(s, i, 7) ~ /^export[ \t]$/) { i += 7; continue }
                if (c == "#" || !match(substr(s, i, 200), /^[A-Za-z_][A-Za-z0-9_]*=/)) {
                    while (i <= n && substr(s, i, 1) != "\n") i++
                    continue
                }
                name = substr(s, i, RLENGTH - 1); i += RLENGTH; v = ""
                while (i <= n) {
                    c = substr(s, i, 1)
                    if (c == " " || c == "\t" || c == "\n" || c == ";") break
                    if (c == "\047") {
                        j = index(substr(s, i + 1), "\047")
                        if (j == 0) j = n - i + 1
                        v = v substr(s, i + 1, j - 1); i += j + 1
                    } else if (c == "\"") {
                        i++
                        while (i <= n && (c = substr(s, i, 1)) != "\"") {
                            if (c == "\\") {
                                d = substr(s, i + 1, 1)
                                if (d == "\n") { i += 2; continue }
                                if (d == "\\" || d == "\"" || d == "$" || d == "`") { c = d; i++ }
                            }
                            v = v c; i++
                        }
                        i++
                    } else if (c == "\\") {
                        d = substr(s, i + 1, 1)
                        if (d != "\n") v = v d
                        i += 2
                    } else if (c == "`" || substr(s, i, 2) == "$(") {
                        # kept as text up to its end, as sh would read it
                        j = i + (c == "`" ? 1 : 2); depth = 1
                        while (j <= n && depth > 0) {
                            d = substr(s, j, 1)
                            if (c == "`") { if (d == "`") depth = 0 }
                            else if (d == "(") depth++
                            else if (d == ")") depth--
                            j++
                        }
                        v = v substr(s, i, j - i); i = j
                    } else { v = v c; i++ }
                }
                val[name] = v
            }
            for (k in val) { f = prefix k; printf "%s", val[k] > f; close(f) }
        }' "$1"
}

provider_fetch() {
    media_find CONTEXT context.sh || media_find '*' context.sh ||
        { log "OpenNebula: no disk holding context.sh"; return 1; }
    log "OpenNebula: context.sh on the disk labelled \"$MEDIA_LABEL\""
    media_file context.sh || return 1
    # the values as WORK/ctx.NAME, read with value (no process) where one
    # line is meant
    _c=$WORK/ctx.
    context_vars "$MEDIA_FILE" "$_c"
    _ud=
    for _v in USER_DATA USERDATA; do [ -e "$_c$_v" ] && { _ud=$_v; break; }; done
    if [ -n "$_ud" ]; then
        value ctx.USERDATA_ENCODING
        case $VALUE in
            '') mv "$_c$_ud" "$WORK/user-data" ;;
            base64) b64 "$_c$_ud" "$WORK/user-data" "$_ud" || return 1 ;;
            *) log "OpenNebula: unknown USERDATA_ENCODING"; return 1 ;;
        esac
    elif [ -e "${_c}EC2_USER_DATA" ]; then
        b64 "${_c}EC2_USER_DATA" "$WORK/user-data" EC2_USER_DATA || return 1
    else
        : >"$WORK/user-data"
    fi
    # OpenNebula's own id of the VM: a new one for every instance.
    value ctx.VMID
    md instance-id "$VALUE"
    for _v in SET_HOSTNAME HOSTNAME; do
        value "ctx.$_v"
        [ -n "$VALUE" ] && { md local-hostname "$VALUE"; break; }
    done
    md_keys "${_c}SSH_PUBLIC_KEY"
    value ctx.ROOT_PUBKEY
    if [ -n "$VALUE" ]; then
        _k=$VALUE
        case /$_k/ in
            */../*) log "OpenNebula: ROOT_PUBKEY leaves the disk; ignored" ;;
            *) media_file "$_k"
               case $? in
                   0) md_keys "$MEDIA_FILE" ;;
                   1) log "OpenNebula: ROOT_PUBKEY names $_k, not on the disk" ;;
               esac ;;
        esac
    fi
    return 0
}
