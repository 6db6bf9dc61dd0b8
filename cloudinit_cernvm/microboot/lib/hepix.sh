# shellcheck shell=sh
# The HEPiX site context of a context CD: its prolog.sh and epilog.sh, which
# CernVM's vmcontext_prolog and vmcontext_epilog ran from a copy of the whole
# CD, kept in the seed (WORK/hepix, the seed's hepix/) so that cloud-init runs
# them (cloudinit_cernvm/hepix.py) and nothing mounts the CD a second time.
# Sourced, never run; by providers/opennebula.sh, with MEDIA the CD and the
# context.sh values read into WORK/ctx.NAME.
#
# Kept, each a regular file at the CD's top (media_file: no link, no ".."):
# prolog.sh, epilog.sh, context.sh (their environment, and the HEPiX
# templates source ./context.sh), the files context.sh names (FILES, whose
# words OpenNebula puts at the CD's top under their base names; ROOT_PUBKEY,
# USER_PUBKEY), and every file at the top whose name the scripts hold as a
# word (grep -w: "$CONTEXT_DIR/site.tgz" holds site.tgz). Names come from
# the CD: only [A-Za-z0-9._+-], not starting with ".", at most 255 bytes;
# others are not kept (one line). Bounded: HEPIX_MAX_FILES files of at most
# HEPIX_CAP bytes together; a file beyond is not kept (one line). Nothing is
# kept when the CD has neither script.

HEPIX_CAP=16777216     # the kept files together
HEPIX_MAX_FILES=64
HEPIX_MAX_SCAN=1024    # entries at the CD's top looked at for names

# hepix_keep: WORK/hepix from the CD in MEDIA. Returns 0 (a fault is a line).
hepix_keep() {
    _hp=0
    media_file prolog.sh && _hp=1
    media_file epilog.sh && _hp=1
    [ "$_hp" = 1 ] || return 0
    mkdir -p "$WORK/hepix" || return 0
    HEPIX_SIZE=0 HEPIX_COUNT=0
    for _hn in prolog.sh epilog.sh context.sh; do hepix_take "$_hn" script; done
    for _hv in ROOT_PUBKEY USER_PUBKEY; do
        value "ctx.$_hv"
        [ -n "$VALUE" ] && hepix_take "$VALUE" "$_hv"
    done
    if [ -s "$WORK/ctx.FILES" ]; then
        # shellcheck disable=SC2013 # words, not lines
        for _hn in $(cat "$WORK/ctx.FILES"); do hepix_take "${_hn##*/}" FILES; done
    fi
    set --
    for _hn in prolog.sh epilog.sh; do
        [ -f "$WORK/hepix/$_hn" ] && set -- "$@" "$WORK/hepix/$_hn"
    done
    _hs=0
    set +f
    for _hf in "$MEDIA"/*; do
        _hs=$((_hs + 1))
        [ "$_hs" -le "$HEPIX_MAX_SCAN" ] || break
        _hn=${_hf##*/}
        [ -e "$WORK/hepix/$_hn" ] && continue
        if [ ! -f "$_hf" ] || [ -L "$_hf" ]; then continue; fi
        [ $# -gt 0 ] && grep -qwF -e "$_hn" "$@" 2>/dev/null && hepix_take "$_hn" scripts
    done
    set -f
    log "HEPiX site context: $HEPIX_COUNT files ($HEPIX_SIZE bytes) kept"
    return 0
}

# hepix_take NAME WHY: MEDIA/NAME into WORK/hepix/NAME (0600) when its name
# is safe, it is a regular file on the CD and within the bounds. WHY says
# who named it, for the log line of a file not kept.
hepix_take() {
    _tn=$1
    [ -e "$WORK/hepix/$_tn" ] && return 0
    case $_tn in
        ''|.*|*[!A-Za-z0-9._+-]*)
            log "HEPiX: a file named by $2 has a name not kept (only A-Z a-z 0-9 . _ + -, no leading .)"
            return 0 ;;
    esac
    if [ ${#_tn} -gt 255 ]; then log "HEPiX: a name of $2 is over 255 bytes; not kept"; return 0; fi
    media_file "$_tn"
    case $? in
        0) ;;
        1) [ "$2" = script ] || log "HEPiX: $_tn, named by $2, is not on the disk"; return 0 ;;
        *) return 0 ;;
    esac
    if [ "$HEPIX_COUNT" -ge "$HEPIX_MAX_FILES" ]; then
        log "HEPiX: $_tn not kept: more than $HEPIX_MAX_FILES files"
        return 0
    fi
    file_size "$MEDIA_FILE"
    if [ $((HEPIX_SIZE + SIZE)) -gt "$HEPIX_CAP" ]; then
        log "HEPiX: $_tn not kept: the site context's files would be over $HEPIX_CAP bytes"
        return 0
    fi
    head -c $((HEPIX_CAP - HEPIX_SIZE + 1)) "$MEDIA_FILE" >"$WORK/hepix/$_tn"
    file_size "$WORK/hepix/$_tn"
    if [ $((HEPIX_SIZE + SIZE)) -gt "$HEPIX_CAP" ]; then    # it grew meanwhile
        rm -f "$WORK/hepix/$_tn"
        log "HEPiX: $_tn not kept: the site context's files would be over $HEPIX_CAP bytes"
        return 0
    fi
    HEPIX_SIZE=$((HEPIX_SIZE + SIZE)) HEPIX_COUNT=$((HEPIX_COUNT + 1))
    return 0
}
