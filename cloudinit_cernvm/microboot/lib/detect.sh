# shellcheck shell=sh
# Recognition from local evidence, by the rule table in ../rules (its format
# is described at its top; cloudinit_cernvm/detect.py reads the same table
# with the same meaning). Sourced, never run.

# detect: PROVIDER and EVIDENCE (one line) of the first rule that matches.
detect() {
    _cur='' _ok=0 _ev=''
    while read -r _p _k _f _pat; do
        case $_p in ''|'#'*) continue ;; esac
        if [ "$_p" != + ]; then
            [ "$_ok" = 1 ] && break
            _cur=$_p _ok=1 _ev=
        fi
        [ "$_ok" = 1 ] || continue
        if condition "$_k" "$_f" "$_pat" </dev/null; then
            _ev="${_ev:+$_ev and }$COND"
        else
            _ok=0
        fi
    done <"$MB_DIR/rules"
    [ "$_ok" = 1 ] || return 1
    # shellcheck disable=SC2034 # read by fetch-context
    PROVIDER=$_cur EVIDENCE=$_ev
}

# condition KIND FIELD PATTERN: 0 when it holds; COND says why.
condition() {
    case $1 in
        cmdline) cmdline_has "$2" "$3" ;;
        dmi) file_matches "$SYSROOT/sys/class/dmi/id/$2" "$3" "DMI $2" ;;
        hypervisor) file_matches "$SYSROOT/sys/hypervisor/$2" "$3" "/sys/hypervisor/$2" ;;
        label)
            media_find "$2" "$3" || return 1
            COND="a disk labelled \"$MEDIA_LABEL\""
            [ "$3" = - ] || COND="$COND holds $3" ;;
        *) log "rules: unknown kind $1"; return 1 ;;
    esac
}

# file_matches FILE GLOB NAME: the first line of FILE, blanks around it cut.
file_matches() {
    [ -r "$1" ] || return 1
    _v=
    read -r _v <"$1" || [ -n "$_v" ] || return 1
    # shellcheck disable=SC2254 # the rule's glob
    case $_v in $2) COND="$3 is \"$_v\"" ;; *) return 1 ;; esac
}

# cmdline_has KEYS VALUE: a KEY=VALUE word on the kernel command line. A
# value (up to ";" or ",") longer than any provider name is no provider's:
# skipped unread (lower costs the cube of its length).
cmdline_has() {
    [ -n "${CMDLINE+set}" ] || { CMDLINE=; read -r CMDLINE <"$SYSROOT/proc/cmdline" 2>/dev/null; }
    for _w in $CMDLINE; do
        case $_w in *=*) ;; *) continue ;; esac
        case ",$1," in *",${_w%%=*},"*) ;; *) continue ;; esac
        _val=${_w#*=}
        _val=${_val%%;*}
        _val=${_val%%,*}
        [ ${#_val} -le 16 ] || continue
        lower "$2"
        _want=$LOWER
        lower "$_val"
        # shellcheck disable=SC2254 # the rule's glob
        case $LOWER in $_want) COND="kernel command line has $_w"; return 0 ;; esac
    done
    return 1
}
