# shellcheck shell=sh
# Data formats met while fetching: base64, gzip (with a size cap), the few
# JSON strings the seed needs, and the µCernVM block of the user-data
# (also inside MIME parts) turned into ucontext lines. Sourced, never run.

GZIP_CAP=16777216    # 16 MiB: user-data larger than this once unpacked is refused

# b64 IN OUT: base64 IN decoded into OUT (blanks and line ends ignored).
b64() {
    tr -d ' \t\r\n' <"$1" >"$1.b64" && base64 -d "$1.b64" >"$2" 2>/dev/null && return 0
    log "$3 is not valid base64"
    return 1
}

# gunzip_capped FILE: FILE unpacked in place if it is gzip, at most GZIP_CAP.
gunzip_capped() {
    [ "$(hexdump -n 2 -e '2/1 "%02x"' "$1")" = 1f8b ] || return 0
    rm -f "$1.gzfail"
    { gunzip -c "$1" 2>/dev/null || : >"$1.gzfail"; } | head -c $((GZIP_CAP + 1)) >"$1.gunzip"
    file_size "$1.gunzip"
    _size=$SIZE
    if [ "$_size" -gt "$GZIP_CAP" ]; then
        log "gzip user-data unpacks to more than $GZIP_CAP bytes: refused"
        return 1
    fi
    if [ -e "$1.gzfail" ]; then
        log "gzip user-data is corrupt"
        return 1
    fi
    mv -f "$1.gunzip" "$1"
    log "user-data was gzip: $_size bytes unpacked"
}

# file_size FILE: its size in bytes in SIZE (ls runs in the forked shell;
# wc would be a second program).
file_size() {
    # shellcheck disable=SC2046 # ls -ln's fields
    set -- $(ls -ln "$1")
    SIZE=$5
}

# json_strs FILE NAME=KEY...: "NAME<TAB>value" for the first string value of
# each "KEY" in a JSON FILE, escapes undone (enough for ids, names, zones).
json_strs() {
    _jf=$1
    shift
    awk -v pairs="$*" '{ all = all " " $0 } END {
        n = split(pairs, p, " ")
        for (i = 1; i <= n; i++) {
            name = p[i]; sub(/=.*/, "", name); key = substr(p[i], length(name) + 2)
            if (!match(all, "\"" key "\"[ \t]*:[ \t]*\"")) continue
            s = substr(all, RSTART + RLENGTH); out = ""
            while (s != "") {
                c = substr(s, 1, 1)
                if (c == "\"") break
                if (c == "\\") { c = substr(s, 2, 1); s = substr(s, 2); if (c == "n" || c == "t") c = " " }
                out = out c; s = substr(s, 2)
            }
            if (out != "") print name "\t" out
        }
    }' "$_jf"
}

# json_files FILE DIR: each scalar of the JSON object in FILE at depth 1 as
# DIR/KEY, at depth 2 as DIR/PARENT.KEY, holding the value: strings with
# their escapes undone (\n a line end, \uXXXX as UTF-8), numbers and
# literals as written. The file name comes from the server's answer, so a
# key or parent that is not a plain name (letters, digits, "_", "-", ".",
# not starting with ".") is skipped: nothing is written outside DIR.
json_files() {
    mkdir -p "$2"
    awk -v dir="$2" '
        function utf8(c) {
            if (c < 128) return sprintf("%c", c)
            if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
            return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
        }
        function hex(h,   i, v) {
            v = 0
            for (i = 1; i <= 4; i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
            return v
        }
        function plain(k) { return k ~ /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/ }
        function emit(v,   f) {
            if (depth < 1 || depth > 2 || !plain(key) || (depth == 2 && !plain(parent))) return
            f = dir "/" (depth == 2 ? parent "." : "") key
            printf "%s", v > f; close(f)
        }
        { s = s $0 "\n" }
        END {
            n = length(s); i = 1; depth = 0; expect_key = 0; key = ""; parent = ""
            while (i <= n) {
                c = substr(s, i, 1)
                if (c == "{") { depth++; if (depth == 2) parent = key; expect_key = 1; key = ""; i++; continue }
                if (c == "[") { depth++; expect_key = 0; i++; continue }
                if (c == "}" || c == "]") { depth--; i++; continue }
                if (c == ",") { expect_key = (depth >= 1); i++; continue }
                if (c == ":") { expect_key = 0; i++; continue }
                if (c == "\"") {
                    out = ""; i++
                    while (i <= n && (c = substr(s, i, 1)) != "\"") {
                        if (c == "\\") {
                            d = substr(s, i + 1, 1); i += 2
                            if (d == "n") out = out "\n"
                            else if (d == "t") out = out "\t"
                            else if (d == "r") out = out "\r"
                            else if (d == "b" || d == "f") out = out
                            else if (d == "u") { out = out utf8(hex(substr(s, i, 4))); i += 4 }
                            else out = out d
                            continue
                        }
                        out = out c; i++
                    }
                    i++
                    if (expect_key) { key = out; expect_key = 0 } else emit(out)
                    continue
                }
                if (c ~ /[-0-9tfn]/) {
                    j = i
                    while (j <= n && substr(s, j, 1) ~ /[-+0-9.eEtrufalsn]/) j++
                    emit(substr(s, i, j - i)); i = j; continue
                }
                i++
            }
        }' "$1"
}

# json_obj_values KEY FILE: the string values of the object "KEY", a line each.
json_obj_values() {
    awk -v key="$1" '{ all = all " " $0 } END {
        if (!match(all, "\"" key "\"[ \t]*:[ \t]*[{]")) exit
        s = substr(all, RSTART + RLENGTH); n = 0; out = ""; instr = 0
        while (s != "") {
            c = substr(s, 1, 1); s = substr(s, 2)
            if (!instr) {
                if (c == "}") break
                if (c == "\"") { instr = 1; out = "" }
                else if (c == ":") isval = 1
                else if (c == ",") isval = 0
                continue
            }
            if (c == "\\") { c = substr(s, 1, 1); s = substr(s, 2); if (c == "n") c = "\n" }
            else if (c == "\"") { instr = 0; if (isval) printf "%s\n", out; continue }
            out = out c
        }
    }' "$2"
}

# The µCernVM block reader, shared by ucontext's two awk programs: ublock
# takes the lines in order (CRs cut) and gathers the first block's settings
# as _UCONTEXT_KEY=value lines in ub_out; ub_done once the block has ended.
UBLOCK_AWK='
function ublock(line,   i, k, v, lv) {
    if (ub_done) return
    if (!ub_in) { if (line == "[ucernvm-begin]") ub_in = 1; return }
    if (line == "[ucernvm-end]") { ub_done = 1; return }
    i = index(line, "="); if (i < 2) return
    k = toupper(substr(line, 1, i - 1)); v = substr(line, i + 1)
    if (k !~ /^[A-Z0-9_]+$/) return
    lv = tolower(v)
    if (lv == "yes" || lv == "on" || lv == "true") v = 1
    else if (lv == "no" || lv == "off" || lv == "false") v = 0
    ub_out = ub_out "_UCONTEXT_" k "=" v "\n"
}'

# ucontext IN OUT: the first µCernVM block of IN as _UCONTEXT_KEY=value
# lines (µCernVM's rules: exact marker lines, split at the first "=", key
# upper-cased, yes/on/true -> 1 and no/off/false -> 0 in any case). MIME
# parts are looked into, base64 ones decoded. OUT is empty when no block.
# One awk in the common cases: plain user-data, or MIME without base64.
ucontext() {
    _first=
    IFS= read -r _first <"$1"
    case $_first in *:*) mime_parts "$1" "$2" ;; esac    # a header line
    [ -e "$WORK/parts.done" ] && return 0
    _flat=$1
    if [ -s "$WORK/parts" ]; then    # MIME with base64 parts: decode, then read
        _flat=$WORK/flat
        : >"$_flat"
        while read -r _part _enc; do
            if [ "$_enc" = base64 ]; then
                b64 "$_part" "$_part.dec" "a base64 MIME part" && cat "$_part.dec" >>"$_flat"
            else
                cat "$_part" >>"$_flat"
            fi
            echo >>"$_flat"
        done <"$WORK/parts"
    fi
    awk "$UBLOCK_AWK"'
        { sub(/\r$/, ""); ublock($0); if (ub_done) exit }
        END { printf "%s", ub_out }' "$_flat" >"$2"
}

# mime_parts IN OUT: when IN is MIME multipart, each part body in
# WORK/part.N and WORK/parts holding "WORK/part.N ENCODING" lines. Without
# base64 parts, the µCernVM block of the parts is written to OUT at once and
# WORK/parts.done made; else ucontext decodes them and reads the block.
mime_parts() {
    awk -v dir="$WORK" -v result="$2" "$UBLOCK_AWK"'
        { sub(/\r$/, "") }
        state == 0 {
            if ($0 == "") { state = (bnd == "" ? 9 : 1); next }
            hdr = hdr " " $0
            if (match(hdr, /[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]="[^"]*"/))
                bnd = substr(hdr, RSTART + 10, RLENGTH - 11)
            else if (match(hdr, /[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]=[^ ;]+/))
                bnd = substr(hdr, RSTART + 9, RLENGTH - 9)
            next
        }
        state == 9 { exit }
        $0 == "--" bnd "--" { exit }
        $0 == "--" bnd {
            if (out != "") close(out)
            n++; out = dir "/part." n; printf "" > out; enc = "7bit"; inhdr = 1; next
        }
        out == "" { next }
        inhdr {
            if ($0 == "") {
                inhdr = 0; print out " " enc >> (dir "/parts")
                if (enc == "base64") base64 = 1
                next
            }
            if (tolower($0) ~ /^content-transfer-encoding:[ \t]*base64/) enc = "base64"
            next
        }
        { print > out; if (enc != "base64") ublock($0) }
        END {
            if (out != "") close(out)
            if (n > 0 && !base64) { printf "%s", ub_out > result; printf "" > (dir "/parts.done") }
        }
    ' "$1"
}
