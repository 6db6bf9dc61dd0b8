# shellcheck shell=sh
# Labelled disks: config drives, context CDs, the Azure provisioning CD.
# Sourced, never run. With CERNVM_MEDIA_DIR (tests), each sub-directory
# stands for a mounted disk whose label is its name. On a real machine the
# disks come from blkid (else from /proc/partitions, their iso9660 or vfat
# label read directly), and a disk is mounted read-only on first use and
# unmounted by media_release.

# media_list: WORK/media, one disk a line: LABEL<TAB>DEVICE-OR-DIR<TAB>TYPE
media_list() {
    [ -e "$WORK/media" ] && return 0
    : >"$WORK/media"
    if [ -n "$MEDIA_DIR" ]; then
        set +f
        for _d in "$MEDIA_DIR"/*/; do
            [ -d "$_d" ] || continue
            _d=${_d%/}
            printf '%s\t%s\tdir\n' "${_d##*/}" "$_d" >>"$WORK/media"
        done
        set -f
    elif command -v blkid >/dev/null 2>&1; then
        blkid 2>/dev/null | awk '/^\/dev\// {
            dev = $0; sub(/:.*/, "", dev); lab = ""; typ = ""
            if (match($0, / LABEL="[^"]*"/)) lab = substr($0, RSTART + 8, RLENGTH - 9)
            if (match($0, / TYPE="[^"]*"/)) typ = substr($0, RSTART + 7, RLENGTH - 8)
            if (typ ~ /^(iso9660|vfat|udf)$/) print lab "\t" dev "\t" typ
        }' >>"$WORK/media"
    else
        while read -r _ _ _ _name; do
            case $_name in ''|name|ram*|loop*|zram*) continue ;; esac
            disk_label "$SYSROOT/dev/$_name" && printf '%s\t%s\t%s\n' \
                "$DISK_LABEL" "$SYSROOT/dev/$_name" "$DISK_TYPE" >>"$WORK/media"
        done <"$SYSROOT/proc/partitions"
    fi
    return 0
}

# disk_label DEV: DISK_LABEL and DISK_TYPE of an iso9660 or vfat disk, read
# from its first sectors by one hexdump each (the ISO 9660 volume descriptor
# at 32 KiB, else the FAT boot sector): a line per field, non-printable bytes
# as ".", trailing blanks and padding cut. Returns 1 for any other disk.
disk_label() {
    # "CD001", the system id, the volume id
    _h=$(hexdump -s 32769 -n 71 -e '5/1 "%_p" "\n" 34/1 "%_p" "\n" 32/1 "%_p" "\n"' "$1" 2>/dev/null)
    if [ "${_h%%"$NL"*}" = CD001 ]; then
        DISK_TYPE=iso9660 DISK_LABEL=${_h##*"$NL"}
    else
        # FAT12/16 label and type, then FAT32 label and type, with the gaps
        _h=$(hexdump -n 87 -e '43/1 "%_p" "\n" 11/1 "%_p" "\n" 5/1 "%_p" "\n" 12/1 "%_p" "\n" 11/1 "%_p" "\n" 5/1 "%_p" "\n"' "$1" 2>/dev/null)
        _ifs=$IFS
        IFS=$NL
        # shellcheck disable=SC2086 # split into the six fields
        set -- $_h
        IFS=$_ifs
        if [ "${6:-}" = FAT32 ]; then DISK_LABEL=$5
        else case ${3:-} in FAT12|FAT16) DISK_LABEL=$2 ;; *) return 1 ;; esac
        fi
        DISK_TYPE=vfat
    fi
    DISK_LABEL=${DISK_LABEL%"${DISK_LABEL##*[!. ]}"}
    [ "$DISK_LABEL" != "NO NAME" ] || DISK_LABEL=
    return 0
}

# media_find LABELGLOB PATH: the first disk whose label matches LABELGLOB
# and that holds PATH. Sets MEDIA (its directory), MEDIA_LABEL and MEDIA_DEV
# (its device; with CERNVM_MEDIA_DIR, the file LABEL.img beside the
# directory stands for it). PATH "-" asks for the label only: the disk is
# not mounted and MEDIA is not set.
media_find() {
    media_list
    while IFS=$TAB read -r _lab _dev _typ; do
        # shellcheck disable=SC2254 # the rule's glob
        case $_lab in $1) ;; *) continue ;; esac
        if [ "$2" != - ]; then
            media_mount "$_dev" "$_typ" || continue
            [ -e "$MEDIA/$2" ] || continue
        fi
        # shellcheck disable=SC2034 # read by the providers
        MEDIA_LABEL=$_lab MEDIA_DEV=$_dev
        # shellcheck disable=SC2034 # read by the providers
        [ "$_typ" = dir ] && MEDIA_DEV=$_dev.img
        return 0
    done <"$WORK/media"
    return 1
}

# media_file REL: MEDIA_FILE is MEDIA/REL when that is a regular file
# reached through no symlink and no ".." inside the disk: a link on a disk
# could point at a file of this machine (a key, a password file), which would
# then go into the seed. Returns 1 when REL is not there, 2 (one log line)
# when it is refused. Tests builtins only: no process.
media_file() {
    MEDIA_FILE=$MEDIA/$1
    case /$1/ in
        */../*) log "$1 on the disk leaves it; not read"; return 2 ;;
    esac
    _at=$MEDIA _rest=$1
    while :; do
        _at=$_at/${_rest%%/*}
        if [ -L "$_at" ]; then
            log "$1 on the disk is reached through a symlink; not read"
            return 2
        fi
        case $_rest in */*) _rest=${_rest#*/} ;; *) break ;; esac
    done
    [ -e "$MEDIA_FILE" ] || return 1
    [ -f "$MEDIA_FILE" ] && return 0
    log "$1 on the disk is no regular file; not read"
    return 2
}

EXTRA_CAP=1048576      # extra user-data of all disks together
PICKUP_CAP=16777216    # a pickup tarball

# media_extra: the extra context of µCernVM's 07extracontext, from the disks
# of the stage's one list (media_list: the disks its rules and provider
# read; no scan of its own): every disk's cernvm/extra-user-data appended
# into WORK/extra-user-data, the last disk's cernvm/pickup.tar.gz into
# WORK/pickup.tar.gz. Each file a regular one on its disk (media_file).
media_extra() {
    media_list
    while IFS=$TAB read -r _lab _dev _typ; do
        media_mount "$_dev" "$_typ" || continue
        if media_file cernvm/extra-user-data; then
            head -c $((EXTRA_CAP + 1)) "$MEDIA_FILE" >>"$WORK/extra-user-data"
            log "extra user-data on the disk labelled \"$_lab\""
        fi
        if media_file cernvm/pickup.tar.gz; then
            head -c $((PICKUP_CAP + 1)) "$MEDIA_FILE" >"$WORK/pickup.tar.gz"
            log "pickup.tar.gz on the disk labelled \"$_lab\""
        fi
    done <"$WORK/media"
    media_extra_capped
}

# media_extra_capped: extra files over their caps dropped, one line each.
media_extra_capped() {
    for _f in extra-user-data:$EXTRA_CAP pickup.tar.gz:$PICKUP_CAP; do
        [ -e "$WORK/${_f%:*}" ] || continue
        file_size "$WORK/${_f%:*}"
        [ "$SIZE" -le "${_f#*:}" ] && continue
        log "${_f%:*}: more than ${_f#*:} bytes: not taken"
        rm -f "$WORK/${_f%:*}"
    done
}

# media_mount DEV TYPE: MEDIA is DEV's directory, mounted read-only once.
media_mount() {
    if [ "$2" = dir ]; then MEDIA=$1; return 0; fi
    MEDIA="$WORK/mnt/${1##*/}"
    [ -e "$MEDIA.ok" ] && return 0
    [ -e "$MEDIA.bad" ] && return 1
    mkdir -p "$MEDIA"
    if mount -r -t "$2" "$1" "$MEDIA" 2>"$WORK/mount.err"; then
        : >"$MEDIA.ok"
        return 0
    fi
    log "cannot mount $1 ($2): $(head -n 1 "$WORK/mount.err")"
    : >"$MEDIA.bad"
    return 1
}

# media_release: unmount what media_mount mounted.
media_release() {
    [ -d "$WORK/mnt" ] || return 0
    set +f
    for _ok in "$WORK"/mnt/*.ok; do
        # lazily when busy: a process killed at the deadline may not be gone yet
        [ -e "$_ok" ] && { umount "${_ok%.ok}" 2>/dev/null || umount -l "${_ok%.ok}" 2>/dev/null; }
    done
    set -f
    return 0
}
