# shellcheck shell=sh
# Shared helpers of fetch-context: log lines with timings, bounded HTTP,
# meta-data collection and the atomic seed writer. Sourced, never run.
# Globals are upper case and set by fetch-context: WORK (a private work
# directory), SYSROOT, METADATA_URL, DEADLINE_MS.

# A line end and a tab, for splitting and matching without a process.
NL='
'
# shellcheck disable=SC2034 # read by media.sh
TAB='	'

# --- log and time ------------------------------------------------------------

log() { printf 'fetch-context: %s\n' "$*" >&2; }

# Milliseconds since boot, read without starting a process (/proc/uptime
# counts hundredths of a second).
now_ms() {
    read -r _up _rest </proc/uptime
    _cs=${_up%.*}${_up#*.}
    while case $_cs in 0?*) true ;; *) false ;; esac; do _cs=${_cs#0}; done
    NOW_MS=$((_cs * 10))
}

# step WHAT: log WHAT with the milliseconds since the previous step.
step() {
    now_ms
    log "$1 ($((NOW_MS - STEP_MS)) ms)"
    STEP_MS=$NOW_MS
}

# lower WORD: WORD in lower case (ASCII) in LOWER, without a process: each
# process costs a fork, dear in an emulated or starting machine.
lower() {
    _in=$1 LOWER=
    while [ -n "$_in" ]; do
        _c=${_in%"${_in#?}"} _in=${_in#?}
        case $_c in
            [A-Z])
                _up=ABCDEFGHIJKLMNOPQRSTUVWXYZ _lo=abcdefghijklmnopqrstuvwxyz
                while [ "${_up%"${_up#?}"}" != "$_c" ]; do _up=${_up#?} _lo=${_lo#?}; done
                _c=${_lo%"${_lo#?}"} ;;
        esac
        LOWER=$LOWER$_c
    done
}

# --- HTTP --------------------------------------------------------------------
# Every request is bounded: connect 2 s, answer 4 s, and the whole run by
# DEADLINE_MS; every body by a size cap of its own. A transient failure (no
# connection: the network is still settling or nothing listens yet; a 5xx or
# 429: the service is loaded; no answer, or none whole, within the time
# limit; an answer cut short) is tried again, after 1 s four times, then 2 s
# four times, then every 4 s, while less than RETRY_S seconds have passed
# since the stage started (retry_budget). A definite answer (200, 404 and the
# other 4xx) ends at once. Several URLs go in one curl run (one process, one
# connection). A body is saved only when it came whole: curl's status for
# that URL is 0 and it is within its cap.

HTTP_CONNECT_S=2
HTTP_MAX_S=4
HTTP_COUNT=0
# shellcheck disable=SC2034 # read by the providers
HTTP_SMALL=8192    # the cap of an id, a name, a zone, a token, a key
# what the last request that failed got, for the stage's marker: a kind
# (silent, slow, unavailable, unreachable, cut, refused) and a phrase
HTTP_FAIL_KIND='' HTTP_FAIL=''

# The retry budget: default and most, in seconds (README, "Retries").
RETRY_DEFAULT_S=25
RETRY_MAX_S=30

# retry_budget: RETRY_S from the kernel command line's cernvm.retry=SECONDS
# (0 to RETRY_MAX_S; 0: no retry), else CERNVM_RETRY_S (tests), else
# RETRY_DEFAULT_S. A value that is no number is the default, a larger one
# the most, each with a log line.
retry_budget() {
    RETRY_S=${CERNVM_RETRY_S:-$RETRY_DEFAULT_S} _line=
    read -r _line <"$SYSROOT/proc/cmdline" 2>/dev/null
    for _w in $_line; do
        case $_w in cernvm.retry=*) RETRY_S=${_w#*=} ;; esac
    done
    case $RETRY_S in
        ''|*[!0-9]*)
            log "cernvm.retry: not a number of seconds; $RETRY_DEFAULT_S s"
            RETRY_S=$RETRY_DEFAULT_S ;;
    esac
    while case $RETRY_S in 0?*) true ;; *) false ;; esac; do RETRY_S=${RETRY_S#0}; done
    if [ ${#RETRY_S} -gt 3 ] || [ "$RETRY_S" -gt "$RETRY_MAX_S" ]; then
        log "cernvm.retry: more than $RETRY_MAX_S s; $RETRY_MAX_S s"
        RETRY_S=$RETRY_MAX_S
    fi
}

# http METHOD HEADER NAME MAX URL [NAME MAX URL]...: each URL into WORK/NAME
# (at most MAX bytes), its status into WORK/NAME.code ("000": no answer, or
# none whole). HEADER ('' for none) goes with every request, through curl's
# config on stdin, so a token never shows in ps. Returns 1 when a request got
# no whole answer.
http() {
    _method=$1 _hdr=$2
    shift 2
    _cfg="${_hdr:+header = \"$_hdr\"}"
    _n=0 _items='' _max=0
    while [ $# -ge 3 ]; do
        _cfg="$_cfg
url = \"$3\"
output = \"$WORK/$1\""
        _items="$_items $1:$2" _n=$((_n + 1))
        [ "$2" -le "$_max" ] || _max=$2
        shift 3
    done
    _try=1 _delay=1 _silent=0
    while :; do
        now_ms
        _left=$(((DEADLINE_MS - NOW_MS) / 1000 / _n))
        [ "$_left" -ge 1 ] || { log "no time left for$_items"; return 1; }
        [ "$_left" -lt "$HTTP_MAX_S" ] || _left=$HTTP_MAX_S
        HTTP_COUNT=$((HTTP_COUNT + _n))
        # shellcheck disable=SC2086 # the items, one word each
        set -- $_items
        for _i; do echo 000 >"$WORK/${_i%:*}.code"; done
        # --max-filesize refuses a body whose Content-Length is over the
        # largest cap before it comes; the file size limit (512-byte blocks)
        # stops one sent without a length, which curl before 8.4 lets through:
        # with XFSZ ignored, that transfer alone fails (a write error).
        (ulimit -f $((_max / 512 + 1)); trap '' XFSZ
         exec curl -q -sS -K - -X "$_method" --max-filesize "$_max" \
            --connect-timeout "$HTTP_CONNECT_S" --max-time "$_left" \
            -w '%{http_code} %{time_connect} %{size_download} %{exitcode}\n') \
            >"$WORK/curl.out" 2>"$WORK/curl.err" <<EOF
$_cfg
EOF
        _rc=$? _again='' _stop=''
        while read -r _code _conn _size _exit; do
            [ $# -gt 0 ] || break
            http_item "${1%:*}" "${1##*:}"
            shift
        done <"$WORK/curl.out"
        for _i; do : >"$WORK/${_i%:*}"; _stop=1; done    # no line: no answer
        if [ -n "$_stop" ]; then
            log "$_method$_items: not all whole: $(head -n 1 "$WORK/curl.err")"
            return 1
        fi
        [ -n "$_again" ] || return 0
        now_ms
        [ $((NOW_MS - START_MS)) -lt $((RETRY_S * 1000)) ] || break
        # silent twice in a row (connected, no answer): a loaded service
        # answers, even if only 503; cloud-init's own datasource is left
        # its short try (the marker says silent) instead of the whole budget
        case $_again in "connected, no answer") _silent=$((_silent + 1)) ;; *) _silent=0 ;; esac
        [ "$_silent" -lt 2 ] || break
        log "$_method$_items: $_again, trying again in $_delay s"
        sleep "$_delay"
        _try=$((_try + 1))
        [ $((_try % 4)) != 1 ] || [ "$_delay" -ge 4 ] || _delay=$((_delay * 2))
    done
    log "$_method$_items: $_again after $_try tries in $(((NOW_MS - START_MS) / 1000)) s"
    case $_again in status*) return 0 ;; esac
    return 1
}

# http_item NAME MAX: one line of curl's report (_code _conn _size _exit)
# for WORK/NAME: its status kept when the body came whole, else "000" and
# the body emptied; _again (transient: try again) or _stop (definite) set,
# and HTTP_FAIL_KIND, HTTP_FAIL for a failure.
http_item() {
    case $_exit in ''|*[!0-9]*) _exit=$_rc ;; esac    # a curl before 7.75: its own status
    case $_size in ''|*[!0-9]*) _size=0 ;; esac
    case $_exit:$_code in
        0:5??|0:429)
            echo "$_code" >"$WORK/$1.code"; _again="status $_code"
            http_failed unavailable "$_again"; return 0 ;;
        0:[1-4]??)
            if [ "$_size" -le "$2" ]; then echo "$_code" >"$WORK/$1.code"; return 0; fi
            http_failed refused "answer larger than $2 bytes: refused"; _stop=1 ;;
        63:*|23:*) http_failed refused "answer larger than $2 bytes: refused"; _stop=1 ;;
        *:000)
            case $_conn in
                0|0.0|0.000000) _again="no connection"; http_failed unreachable "$_again" ;;
                *) _again="connected, no answer"; http_failed silent "$_again" ;;
            esac ;;
        28:*) _again="answer not whole within the time limit"; http_failed slow "$_again" ;;
        *) _again="answer cut short (curl status $_exit)"; http_failed cut "$_again" ;;
    esac
    if [ -n "$_stop" ]; then
        log "$_method $1: $HTTP_FAIL"
    elif [ "$_again" != "no connection" ]; then
        log "$_method $1: $_again: not saved"
    fi
    : >"$WORK/$1"
}

# http_failed KIND PHRASE: the last failure, for the stage's marker.
# shellcheck disable=SC2034 # read by fetch-context
http_failed() { HTTP_FAIL_KIND=$1 HTTP_FAIL=$2; }

# get HEADER NAME MAX URL [NAME MAX URL]...: GET each URL into WORK/NAME. A
# 404 leaves WORK/NAME empty (the provider has none), as does any failure;
# got NAME tells them apart. Returns 1 when a request got no whole answer.
get() {
    http GET "$@"
    _rc=$?
    shift
    while [ $# -ge 3 ]; do
        got "$1" || [ "$_rc" = 1 ] || log "${3%%\?*}: status $CODE"
        [ "$CODE" = 200 ] || : >"$WORK/$1"
        shift 3
    done
    return $_rc
}

# got NAME: 0 when NAME came (200), or is known to be absent (404); its
# status in CODE.
got() {
    CODE=000
    [ -r "$WORK/$1.code" ] && read -r CODE <"$WORK/$1.code"
    case $CODE in 200|404) return 0 ;; esac
    return 1
}

# value NAME: the first line of WORK/NAME in VALUE, without a process.
value() {
    VALUE=
    [ -r "$WORK/$1" ] && IFS= read -r VALUE <"$WORK/$1"
    case $VALUE in *[[:cntrl:]]) VALUE=${VALUE%?} ;; esac    # a CR
}

# --- meta-data ---------------------------------------------------------------
# Providers collect items with md KEY VALUE (first line of VALUE), md_file
# KEY NAME, md_json FILE KEY=PATH... and public keys with md_keys FILE
# (one key a line); meta_json turns them into the seed's meta-data JSON
# object: instance-id, local-hostname, public-keys, availability-zone,
# region, then any other key in the order given.

md() {
    _mv=${2%%"$NL"*}
    [ -n "$_mv" ] && printf '%s\t%s\n' "$1" "$_mv" >>"$WORK/md"
    return 0
}

# md_json FILE KEY=PATH...: md KEY with the value at PATH (json_pick's) of
# the JSON FILE, its first line, for each pair, in one pass.
md_json() {
    _f=$1 _picks=''
    shift
    for _p; do _picks="$_picks md.$_p"; done
    # shellcheck disable=SC2086 # NAME=PATH words
    json_pick "$_f" $_picks || return 0
    for _p; do md_file "${_p%%=*}" "md.${_p%%=*}"; done
}

# md_file KEY NAME: md KEY with the first line of WORK/NAME.
md_file() { value "$2"; md "$1" "$VALUE"; }

# md_keys FILE: md public-keys for each line of FILE but blank and comment
# lines (a line end's CR cut), read by the shell: key files are short.
md_keys() {
    [ -s "$1" ] || return 0
    while IFS= read -r _k || [ -n "$_k" ]; do
        case $_k in *[[:cntrl:]]) _k=${_k%?} ;; esac    # a CR
        case ${_k#"${_k%%[! "$TAB"]*}"} in ''|'#'*) continue ;; esac
        printf 'public-keys\t%s\n' "$_k" >>"$WORK/md"
    done <"$1"
}

# meta_json IN OUT: key<TAB>value lines to a JSON object, strings escaped.
# A value that is not UTF-8 (a server's bytes) is dropped with a log line:
# JSON holds text only, and the datasource would refuse the whole file.
meta_json() {
    awk -F '\t' '
        BEGIN { n = split("instance-id local-hostname public-keys availability-zone region", order, " ")
                utf8 = "^([\001-\177]|[\302-\337][\200-\277]|[\340-\357][\200-\277][\200-\277]|[\360-\364][\200-\277][\200-\277][\200-\277])*$"
                for (i = 1; i <= n; i++) seen[order[i]] = 1
                for (i = 1; i < 32; i++) { c = sprintf("%c", i); ctl[c] = sprintf("\\u%04x", i); cc = cc c }
                ctl["\n"] = "\\n"; ctl["\t"] = "\\t"; ctl["\r"] = "\\r"
                special = "[\\\\\"" cc "]"; control = "[" cc "]" }
        # In slices of 256: each gsub match and each concatenation costs the
        # whole string in busybox awk, and a key line may be 256 KB (GCE).
        function esc(s,   out, b, pos, c) {
            if (s !~ special) return "\"" s "\""    # most values: nothing to escape
            out = ""
            for (pos = 1; pos <= length(s); pos += 256) {
                b = substr(s, pos, 256)
                if (b ~ special) {
                    gsub(/\\/, "\\\\", b); gsub(/"/, "\\\"", b)
                    if (b ~ control) for (c in ctl) gsub(c, ctl[c], b)
                }
                out = out b
            }
            return "\"" out "\""
        }
        {
            k = $1; v = substr($0, length(k) + 2)
            if (v !~ utf8) { printf "fetch-context: meta-data %s is not UTF-8 text: dropped\n", k > "/dev/stderr"; next }
            if (!(k in seen)) { seen[k] = 1; order[++n] = k }
            if (k == "public-keys") key[++nk] = esc(v)
            else val[k] = esc(v)
        }
        END {
            printf "{"
            for (i = 1; i <= n; i++) {
                k = order[i]
                if (k == "public-keys") {
                    if (!nk) continue
                    printf "%s\n  %s: [", (m++ ? "," : ""), esc(k)
                    for (j = 1; j <= nk; j++) printf "%s%s", (j > 1 ? ", " : ""), key[j]
                    printf "]"
                    continue
                }
                if (!(k in val)) continue
                printf "%s\n  %s: %s", (m++ ? "," : ""), esc(k), val[k]
            }
            printf "%s}\n", (m ? "\n" : "")
        }' "$1" >"$2"
}

# --- the seed ----------------------------------------------------------------
# Written all or nothing: at any moment SEED holds the old complete seed, the
# new complete one, or (while files are renamed) no source, which makes it no
# seed. source is the validity marker: moved away first, renamed into place
# last. The new files are staged in SEED/.new.PID (same file system, so each
# rename is atomic); the old seed's files wait in SEED/.old.PID until the new
# source stands, so that a failure puts the old seed back. Neither directory
# is left behind. The extra files (SEED_EXTRAS: the extra context, Azure's
# disk image) replace the old ones when this run has them; an old one this
# run has not is left alone, as are files of the seed that are not ours.
SEED_EXTRAS="extra-user-data extra-ucontext pickup.tar.gz azure.iso"
# Directories of the seed (lib/hepix.sh's site context): staged, moved and
# put back whole like a file; an old one this run has not goes, as meta-data.
SEED_DIRS="hepix"
# The seed's optional files that come from the provider's answer: taken when
# not empty, and an old one this run has not goes (another instance's
# vendor-data or network description must not outlive it).
SEED_OWN="meta-data ucontext network-data vendor-data vendor-data2"

# seed_write SEED: WORK's user-data, the SEED_OWN files it has (not empty),
# the SEED_EXTRAS and SEED_DIRS it has and source become the seed; an old
# SEED_OWN file or SEED_DIRS directory this run has not goes.
# Files 0600, SEED 0700. Returns 1 (one log line) with the old seed as it
# was.
seed_write() {
    _seed=$1 _new="$1/.new.$$" _old="$1/.old.$$" _have=user-data
    for _f in $SEED_OWN; do [ -s "$WORK/$_f" ] && _have="$_have $_f"; done
    _extras=
    for _f in $SEED_EXTRAS; do [ -f "$WORK/$_f" ] && _extras="$_extras $_f"; done
    _have="$_have$_extras"
    _dirs=
    for _f in $SEED_DIRS; do [ -d "$WORK/$_f" ] && _dirs="$_dirs $_f"; done
    for _f in source user-data $SEED_OWN $_extras; do
        if [ -d "$_seed/$_f" ] && [ ! -L "$_seed/$_f" ]; then
            log "cannot write the seed: $_seed/$_f is a directory; nothing written"
            return 1
        fi
    done
    set --
    for _f in $_have source; do set -- "$@" "$WORK/$_f"; done
    # mkdir -p makes SEED too; cp keeps a source's mode under the umask (a
    # file from a read-only medium would be 0400): one chmod makes SEED 0700
    # (an older µCernVM's is 0755) and the files 0600 (none has an x bit:
    # the providers write WORK's files themselves, under the umask).
    if ! mkdir -p "$_new" "$_old" 2>"$WORK/seed.err" ||
        ! cp "$@" "$_new/" 2>"$WORK/seed.err"; then
        _seed_cannot
        return 1
    fi
    for _f in $_dirs; do
        if ! cp -R "$WORK/$_f" "$_new/" 2>"$WORK/seed.err" ||
            ! chmod -R u=rwX,go= "$_new/$_f" 2>"$WORK/seed.err"; then
            _seed_cannot
            return 1
        fi
    done
    set -- "$_seed"
    for _f in $_have source; do set -- "$@" "$_new/$_f"; done
    if ! chmod u=rwX,go= "$@" 2>"$WORK/seed.err"; then
        _seed_cannot
        return 1
    fi
    _have="$_have$_dirs"
    # the old seed out of the way, source first: from here on, no seed
    _oldsrc=
    [ -e "$_seed/source" ] && _oldsrc=1
    set --
    for _f in source user-data $SEED_OWN failure $_extras $SEED_DIRS; do
        [ -e "$_seed/$_f" ] || [ -L "$_seed/$_f" ] && set -- "$@" "$_seed/$_f"
    done
    if [ $# -eq 0 ] || mv -f "$@" "$_old/" 2>"$WORK/seed.err"; then
        set --
        for _f in $_have; do set -- "$@" "$_new/$_f"; done
        if mv -f "$@" "$_seed/" 2>"$WORK/seed.err" &&
            mv -f "$_new/source" "$_seed/source" 2>"$WORK/seed.err"; then
            seed_tidy
            return 0
        fi
    fi
    seed_rollback
    return 1
}

# _seed_cannot: the staging failed (SEED a file, read-only, full): the old
# seed is untouched; what was staged goes.
_seed_cannot() {
    _err=
    read -r _err <"$WORK/seed.err"
    log "cannot write the seed into $_seed: ${_err#*: }; nothing written"
    [ -d "$_seed" ] && rm -rf "$_new" "$_old" 2>/dev/null
}

# seed_rollback: after a failed rename, the new files placed so far go and
# the old ones come back, source last; nothing staged is left.
seed_rollback() {
    _err=
    read -r _err <"$WORK/seed.err"
    set --
    # SEED/source is the old one while it was not moved away, else new
    if [ -z "$_oldsrc" ] || [ -e "$_old/source" ]; then set -- "$_seed/source"; fi
    for _f in $_have; do [ -e "$_new/$_f" ] || set -- "$@" "$_seed/$_f"; done
    rm -rf "$@"
    set --
    for _f in user-data $SEED_OWN failure $_extras $SEED_DIRS; do
        [ -e "$_old/$_f" ] && set -- "$@" "$_old/$_f"
    done
    if { [ $# -eq 0 ] || mv -f "$@" "$_seed/"; } &&
        { [ ! -e "$_old/source" ] || mv -f "$_old/source" "$_seed/source"; }; then
        log "cannot move the seed into $_seed: $_err; the old one kept, nothing written"
    else
        rm -f "$_seed/source"
        log "cannot move the seed into $_seed: $_err; it is no seed now (no source)"
    fi
    seed_tidy
}

# seed_tidy: the staging directories of this run, and any an earlier run
# that was stopped left behind, removed.
seed_tidy() {
    set +f
    rm -rf "$_seed"/.new.* "$_seed"/.old.* || log "cannot tidy $_seed"
    set -f
}

# --- the stage's marker ------------------------------------------------------
# When the stage recognised the provider and got no data, it says so in
# SEED: source (the provider) without user-data, and failure (one line:
# KIND: why, KIND one of HTTP_FAIL_KIND's or "deadline", "none"). The
# datasource then falls back to cloud-init's own datasource for that
# provider. A seed already in SEED (source there) is kept as it is: it is
# the context of an earlier boot, better than none.

# marker_write SEED: WORK's provider and failure into SEED as the marker;
# source last (failure first, the files and SEED_DIRS of no seed removed
# before: nothing of another instance is left beside the marker).
marker_write() {
    _seed=$1
    if [ -e "$_seed/source" ] || [ -L "$_seed/source" ]; then
        log "the seed already in $_seed kept"
        return 0
    fi
    [ -s "$WORK/failure" ] || echo "none: no data" >"$WORK/failure"
    set --
    for _f in user-data $SEED_OWN; do set -- "$@" "$_seed/$_f"; done
    for _f in $SEED_DIRS; do set -- "$@" "$_seed/$_f"; done
    if mkdir -p "$_seed" 2>"$WORK/seed.err" && chmod 700 "$_seed" 2>>"$WORK/seed.err" &&
        rm -rf "$@" 2>>"$WORK/seed.err" &&
        cp "$WORK/failure" "$_seed/.failure.$$" 2>>"$WORK/seed.err" &&
        mv -f "$_seed/.failure.$$" "$_seed/failure" 2>>"$WORK/seed.err" &&
        cp "$WORK/provider" "$_seed/.source.$$" 2>>"$WORK/seed.err" &&
        mv -f "$_seed/.source.$$" "$_seed/source" 2>>"$WORK/seed.err"; then
        value failure
        log "marker written to $_seed (source without user-data): $VALUE"
        return 0
    fi
    _err=
    read -r _err <"$WORK/seed.err"
    rm -f "$_seed/.failure.$$" "$_seed/.source.$$" 2>/dev/null
    log "cannot write the marker into $_seed: ${_err#*: }"
    return 1
}
