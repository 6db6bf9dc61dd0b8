# shellcheck shell=sh
# vSphere: user-data.txt on the CD given to the machine.

provider_fetch() {
    media_find '*' user-data.txt || { log "vSphere: no disk holding user-data.txt"; return 1; }
    media_file user-data.txt || return 1
    cat "$MEDIA_FILE" >"$WORK/user-data"
}
