# shellcheck shell=sh
# OpenNebula and the HEPiX context CD: context.sh, read as data (sh quoting
# undone by a parser; it is never sourced or run). User-data from the first
# set and not empty of CernVM's EC2_USER_DATA (base64; what µCernVM reads),
# USER_DATA, USERDATA (USERDATA_ENCODING, else USER_DATA_ENCODING: base64 or
# none); instance-id from VMID; keys from SSH_PUBLIC_KEY and ROOT_PUBKEY (a
# file on the CD).

# context_vars FILE PREFIX [NAME...]: each NAME=value assignment of FILE as
# the file PREFIXNAME holding the value (only the NAMEs given; all without).
# The rules are those of cloudinit_cernvm/contextsh.py (its docstring; the
# cases in tests/data/contextsh-cases.json are read alike by both): sh's
# quoting and word splitting, "export", ";" and comments understood, other
# commands skipped, $(...) and `...` kept as text, never run; the last
# assignment of a name wins.
#
# Linear, with busybox awk's own costs in mind: substr, index and match are
# O(length) there, and so is concatenating to a long string. Each line is
# cut into pieces of at most 256 bytes (by way of 8 KiB chunks). Inside a
# quote or a word, the run up to the next character that means something
# there goes whole (most of a long value); between words and in names, a
# character at a time (split(p, C, "")). Values are put together in short
# runs, never by adding to a long string.
context_vars() {
    _cf=$1 _cp=$2
    shift 2
    awk -v prefix="$_cp" -v names=" $* " '
        # A value is kept in v while short (up to 1 KiB) and written at the
        # end, once a name; a longer one goes to its file as it is read:
        # opening (truncating) a file for every assignment costs far more.
        function put(s) { if (out != "") { buf = buf s; if (++nb >= 64) flush() } }
        function flush() {
            if (buf == "") return
            if (stream) printf "%s", buf > out
            else if (length(v) + length(buf) > 1024) { printf "%s%s", v, buf > out; v = ""; stream = 1 }
            else v = v buf
            buf = ""; nb = 0
        }
        function bulk(p) {
            if (out == "") return
            if (buf != "") flush()
            if (stream) printf "%s", p > out
            else if (length(v) + length(p) > 1024) { printf "%s%s", v, p > out; v = ""; stream = 1 }
            else v = v p
        }
        function word_end() {
            if (out != "") {
                flush()
                if (stream) { close(out); delete val[nm] } else val[nm] = v
            }
            out = ""; v = ""; stream = 0
        }
        function command_end() { skip = 0; xp = 0; mode = 0 }
        function to_skip() { skip = 1; mode = 2; out = "" }
        function bare_name() { if (nm == "export") xp = 1; else if (!xp) skip = 1 }
        function assign() {
            mode = 2; out = ""; v = ""; stream = 0
            if (names == "  " || index(names, " " nm " ")) out = prefix nm
        }
        function word(c) {
            if (bs) { bs = 0; put(c); return }
            if (dol) { dol = 0; if (c == "(") { put(c); mode = 6; depth = 1; return } }
            if (c == " " || c == "\t") { word_end(); mode = 0 }
            else if (c == ";") { word_end(); command_end() }
            else if (c == "\\") bs = 1
            else if (c == "\047") mode = 3
            else if (c == "\"") mode = 4
            else if (c == "`") { put(c); mode = 5 }
            else { if (c == "$") dol = 1; put(c) }
        }
        function ch(c) {
            if (mode == 0) {
                if (bs) { bs = 0; to_skip(); return }
                if (c == " " || c == "\t") return
                if (c == ";") { command_end(); return }
                if (c == "#") { mode = 7; return }
                if (c == "\\") { bs = 1; return }
                if (skip) { mode = 2; word(c); return }
                mode = 1; nm = ""; nml = 0
            }
            if (mode == 1) {
                if (bs) { bs = 0; to_skip(); return }
                if (index(NSTART, c) || (nml && index(DIGITS, c))) {
                    nm = nm c
                    if (++nml > 128) to_skip()
                    return
                }
                if (c == "=" && nml) { assign(); return }
                if (c == " " || c == "\t" || c == ";") {
                    bare_name(); mode = 0
                    if (c == ";") command_end()
                    return
                }
                if (c == "\\") { bs = 1; return }
                to_skip(); word(c); return
            }
            if (mode == 2) word(c)
            else if (mode == 3) { if (c == "\047") mode = 2; else put(c) }
            else if (mode == 4) {
                if (dbs) { dbs = 0; put(index("\\\"$`", c) ? c : "\\" c) }
                else if (c == "\\") dbs = 1
                else if (c == "\"") mode = 2
                else put(c)
            }
            else if (mode == 5) { put(c); if (c == "`") mode = 2 }
            else if (mode == 6) {
                put(c)
                if (c == "(") depth++
                else if (c == ")" && --depth == 0) mode = 2
            }
        }
        function line_end() {
            if (mode <= 2 && bs) { bs = 0; return }    # a continued line
            if (mode == 1) { bare_name(); command_end() }
            else if (mode == 2) { dol = 0; word_end(); command_end() }
            else if (mode == 0 || mode == 7) command_end()
            else if (mode == 4 && dbs) dbs = 0
            else put("\n")
        }
        # in a quote or a word: runs of plain characters go whole
        function bulkable() { return mode >= 2 && mode <= 6 && !bs && !dbs && !dol }
        # where the first character that means something in this mode is, 0: none
        function first(p) {
            if (mode == 2) return match(p, /[ \t;\\\047"`$]/)
            if (mode == 3) return index(p, "\047")
            if (mode == 4) return match(p, /["\\]/)
            if (mode == 5) return index(p, "`")
            return match(p, /[()]/)
        }
        function piece(p,   r, n, i) {
            while (p != "" && mode != 7) {
                # an assignment starting: its name at once (as ch would read it)
                if (mode == 0 && !bs && !skip && match(p, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*=/)) {
                    nm = substr(p, 1, RLENGTH - 1)
                    sub(/^[ \t]*/, "", nm)
                    if (length(nm) <= 128) { assign(); p = substr(p, RLENGTH + 1); continue }
                }
                if (bulkable()) {
                    r = first(p)
                    if (r == 0) { bulk(p); return }
                    if (r > 1) bulk(substr(p, 1, r - 1))
                    if (mode == 3 && substr(p, r, 4) == "\047\\\047\047") {
                        put("\047"); p = substr(p, r + 4)    # OpenNebula writes a quote so
                        continue
                    }
                    ch(substr(p, r, 1)); p = substr(p, r + 1)
                    continue
                }
                n = split(p, C, "")
                for (i = 1; i <= n; i++) { ch(C[i]); if (mode == 7 || bulkable()) break }
                if (i >= n) return
                p = substr(p, i + 1)
            }
        }
        BEGIN { NSTART = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"; DIGITS = "0123456789" }
        {
            L = length($0)
            if (L <= 256) {
                if (L) piece($0)
                line_end()
                next
            }
            for (o1 = 1; o1 <= L && mode != 7; o1 += 8192) {
                k = (L <= 8192) ? $0 : substr($0, o1, 8192)
                K = length(k)
                for (o2 = 1; o2 <= K && mode != 7; o2 += 256)
                    piece(K <= 256 ? k : substr(k, o2, 256))
            }
            line_end()
        }
        END { word_end(); for (k in val) { f = prefix k; printf "%s", val[k] > f; close(f) } }' "$_cf"
}

provider_fetch() {
    media_find CONTEXT context.sh || media_find '*' context.sh ||
        { log "OpenNebula: no disk holding context.sh"; return 1; }
    log "OpenNebula: context.sh on the disk labelled \"$MEDIA_LABEL\""
    media_file context.sh || return 1
    # the values as WORK/ctx.NAME, read with value (no process) where one
    # line is meant
    _c=$WORK/ctx.
    context_vars "$MEDIA_FILE" "$_c" EC2_USER_DATA USER_DATA USERDATA USERDATA_ENCODING \
        USER_DATA_ENCODING VMID SET_HOSTNAME HOSTNAME SSH_PUBLIC_KEY ROOT_PUBKEY \
        USER_PUBKEY FILES
    # the first set and not empty, as contextsh.user_data
    _ud=
    for _v in EC2_USER_DATA USER_DATA USERDATA; do [ -s "$_c$_v" ] && { _ud=$_v; break; }; done
    _enc=USERDATA_ENCODING
    [ -e "$_c$_enc" ] || _enc=USER_DATA_ENCODING
    value "ctx.$_enc"
    case $_ud in
        '') : >"$WORK/user-data" ;;
        EC2_USER_DATA) b64 "$_c$_ud" "$WORK/user-data" "$_ud" || return 1 ;;
        *) case $VALUE in
               '') mv "$_c$_ud" "$WORK/user-data" ;;
               base64) b64 "$_c$_ud" "$WORK/user-data" "$_ud" || return 1 ;;
               *) log "OpenNebula: unknown $_enc for $_ud"; return 1 ;;
           esac ;;
    esac
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
    # shellcheck source=cloudinit_cernvm/microboot/lib/hepix.sh
    . "$MB_DIR/lib/hepix.sh"
    hepix_keep
    return 0
}
