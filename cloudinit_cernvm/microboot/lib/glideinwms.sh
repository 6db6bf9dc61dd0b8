# shellcheck shell=sh
# glideinWMS user-data (CMS pilots), as µCernVM's 06context reads it: the
# factory cannot write a µCernVM block, so the CVMFS proxy and PAC URLs of
# the pilot's arguments go into ucontext. Sourced, never run; needs
# formats.sh (b64, UBLOCK_AWK's shq).
#
# The data is one line: base64 of the pilot's startup file, then
# "#### -cluster N -subcluster M####" and more. Its "args" line carries
# -param_CERNVM_CMS_PROXY X and -param_CERNVM_CMS_PAC_URLS Y, with ; : | - .
# written .semicolon, .colon, .pipe, .minus, .dot, (glideinWMS escapes them).

# glideinwms_detect USER_DATA UCONTEXT [B64]: 0 when USER_DATA is
# glideinWMS data and UCONTEXT does not turn the detection off
# (useglideinWMS=0, the last setting counting, as sourcing would); its
# base64 part (before the first "#") into B64. One awk, which stops at the
# third line: a shell read of a long line would take a system call a byte.
glideinwms_detect() {
    [ -s "$1" ] || return 1
    _gw_on=1
    if [ -s "$2" ]; then
        while IFS= read -r _gw_l; do
            case $_gw_l in
                _UCONTEXT_USEGLIDEINWMS=0) _gw_on=0 ;;
                _UCONTEXT_USEGLIDEINWMS=*) _gw_on=1 ;;
            esac
        done <"$2"
    fi
    [ "$_gw_on" = 1 ] || return 1
    awk -v out="${3:-/dev/null}" "$GLIDEIN_DETECT_AWK" "$1"
    case $? in
        0) return 0 ;;
        # two lines: one when the second has no line end (µCernVM counted them)
        3) [ -n "$(tail -c 1 "$1")" ] && return 0 ;;
    esac
    return 1
}

# At most two lines, one with the cluster mark: exit 0 (one line), 3 (two:
# the shell looks at the last byte), else 1; line 1 up to its first "#" to out.
# shellcheck disable=SC2016 # awk's own $0
GLIDEIN_DETECT_AWK='
NR > 2 { exit 1 }
NR == 1 { first = $0 }
/#### -cluster [0-9]* -subcluster [0-9]*####/ { mark = 1 }
END {
    if (NR > 2 || !mark) exit 1
    i = index(first, "#")
    printf "%s", substr(first, 1, i - 1) > out
    exit NR == 2 ? 3 : 0
}'

# glideinwms USER_DATA UCONTEXT: when USER_DATA is glideinWMS data, its
# proxy and PAC URLs appended to UCONTEXT as _UCONTEXT_CVMFS_HTTP_PROXY and
# _UCONTEXT_CVMFS_PAC_URLS (quoted as the block's values are). Returns 1
# when it is not glideinWMS data.
glideinwms() {
    if ! glideinwms_detect "$1" "$2" "$WORK/glidein.b64"; then
        [ "${_gw_on:-1}" = 0 ] && log "glideinWMS detection turned off (useglideinWMS=0)"
        return 1
    fi
    if ! b64 "$WORK/glidein.b64" "$WORK/glidein" "the glideinWMS startup data"; then
        log "glideinWMS user-data: no CVMFS settings taken"
        return 0
    fi
    awk "$UBLOCK_AWK$GLIDEIN_AWK" "$WORK/glidein" >>"$2"
    log "glideinWMS user-data: CVMFS proxy and PAC URLs of its pilot taken into ucontext"
    return 0
}

# The first line starting "args": the word after the last
# -param_CERNVM_CMS_PROXY and -param_CERNVM_CMS_PAC_URLS, un-escaped.
# shellcheck disable=SC2016 # awk's own $i
GLIDEIN_AWK='
function unescape(v) {
    gsub(/\.semicolon,/, ";", v); gsub(/\.colon,/, ":", v); gsub(/\.pipe,/, "|", v)
    gsub(/\.minus,/, "-", v); gsub(/\.dot,/, ".", v)
    return v
}
/^args/ {
    for (i = 2; i < NF; i++) {
        if ($i == "-param_CERNVM_CMS_PROXY") proxy = $(i + 1)
        else if ($i == "-param_CERNVM_CMS_PAC_URLS") pac = $(i + 1)
    }
    if (proxy != "") printf "_UCONTEXT_CVMFS_HTTP_PROXY=%s\n", shq(unescape(proxy))
    if (pac != "") printf "_UCONTEXT_CVMFS_PAC_URLS=%s\n", shq(unescape(pac))
    exit
}'
