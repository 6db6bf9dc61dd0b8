# shellcheck shell=sh
# Data formats met while fetching: base64, gzip (with a size cap), the few
# JSON values the seed needs, and the µCernVM block of the user-data
# (also inside MIME parts) turned into ucontext lines. Sourced, never run.

GZIP_CAP=1048576    # 1 MiB: user-data larger than this once unpacked is refused

# b64 IN OUT WHAT: base64 IN decoded into OUT. Blanks and line ends are
# ignored; the rest must be the base64 alphabet, "=" only at the end and as
# many as the length needs, or up to two after a whole group: what Python's
# b64decode(validate=True), cernvm-context's check, takes on 3.9 and on
# 3.11+ alike. busybox base64 -d alone would decode garbage.
b64() {
    # shellcheck disable=SC2020 # each blank to a line end, one for one
    tr ' \t\r\n\v\f\000' '\n\n\n\n\n\n!' <"$1" | awk "$B64_AWK" >"$1.b64" &&
        base64 -d "$1.b64" >"$2" 2>/dev/null && return 0
    log "$3 is not valid base64 (A-Z a-z 0-9 + /, \"=\" padding at the end only)"
    return 1
}

# The check, a line at a time (line ends stand for every blank, NUL for "!"):
# the letters written out, the padding made what base64 -d wants.
# shellcheck disable=SC2016 # awk's own $0
B64_AWK='
$0 == "" { next }
$0 !~ /^[A-Za-z0-9+\/]*=*$/ || (pad && $0 !~ /^=*$/) { bad = 1; exit }
{
    s = $0
    if (match(s, /=+$/)) { pad += RLENGTH; s = substr(s, 1, RSTART - 1) }
    n += length(s); printf "%s", s
}
END {
    r = n % 4
    if (bad || pad > 2 || (pad && !n) || r == 1 || (r == 2 && pad != 2) || (r == 3 && pad != 1)) exit 1
    printf "%s", r == 2 ? "==" : r == 3 ? "=" : ""
}'

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

# json_pick FILE NAME=PATH...: for each PATH wanted in the JSON FILE, its
# value into WORK/NAME. PATH names object keys joined by "." (id,
# attributes.ssh-keys); a value is a string, its escapes undone (\n a line
# end, \uXXXX as UTF-8), or a number or true/false as written (null: none).
# PATH.* takes every string value of that object, one a line. The first
# value of a PATH counts; a PATH that is missing writes no file. The file
# names are the caller's (plain words), never the data's. Returns 1, all
# NAMEs removed, when FILE is nested deeper than JSON_DEPTH, has more than
# 16384 strings or 64 KiB outside them (no provider's document comes near),
# or ends inside a wanted value.
# One awk, linear in FILE: strings are its records (RS is the quote); only
# wanted values are unescaped, in slices that gsub does cheaply. (substr,
# concatenation and each gsub match cost the whole string in busybox awk: a
# loop over the characters of a long string would be quadratic.)
JSON_DEPTH=32
json_pick() {
    _jf=$1
    shift
    awk -v dir="$WORK" -v want="$*" -v maxd="$JSON_DEPTH" "$JSON_PICK_AWK" "$_jf"
    case $? in
        0) return 0 ;;
        2) log "${_jf##*/}: JSON nested deeper than $JSON_DEPTH levels, or with more than" \
               "16384 strings or 64 KiB between them: not read" ;;
        *) log "${_jf##*/}: JSON cut short in a value: not read" ;;
    esac
    for _p; do rm -f "$WORK/${_p%%=*}"; done
    return 1
}

# The reader. Outside strings (odd records, as split at the quotes), one
# character at a time in slices of 4096: {}[],: set the depth, the
# container's path (pth), the key of its current value (key) and what comes
# next (expect: k a key, v a value, "" neither). Inside (even records; a
# record ending in an odd number of backslashes ended at an escaped quote,
# the string goes on), a key is kept up to 256 characters, a wanted value is
# unescaped into its file, any other string is skipped unread.
# shellcheck disable=SC2016 # awk's own $0
JSON_PICK_AWK='
BEGIN {
    RS = "\""; SEP = "\001"; NOPATH = "\002"; JSON_PLAIN = 65536; JSON_STRINGS = 16384
    n = split(want, w, " ")
    for (i = 1; i <= n; i++) {
        name = w[i]; sub(/=.*/, "", name); p = substr(w[i], length(name) + 2)
        if (p ~ /\.\*$/) { p = substr(p, 1, length(p) - 2); gsub(/\./, SEP, p); every[p] = name }
        else { gsub(/\./, SEP, p); one[p] = name }
    }
    d = 0; expect = "v"; instr = 0; bad = 0
}
function join(a, b) { return a == "" ? b : a SEP b }
function hex(h,   i, v) {
    v = 0
    for (i = 1; i <= 4; i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
    return v
}
function utf8(c) {
    if (c < 128) return sprintf("%c", c)
    if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
    if (c < 65536) return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64,
                   128 + int(c / 64) % 64, 128 + c % 64)
}
# A value starts in the container at depth d: the file it goes to, if any.
function value_file(   full) {
    target = ""; eachline = 0
    if (d < 1 || typ[d] != "{" || expect != "v") return
    full = join(pth[d], key[d])
    if ((full in one) && !(one[full] in done)) { target = dir "/" one[full]; done[one[full]] = 1 }
}
# The text between two strings, a character at a time, in slices of 4096.
function structure(s,   L, pos, m, i, c, k, ch, tok, tokout) {
    L = length(s); tokout = ""
    for (pos = 1; pos <= L; pos += 4096) {
        m = split(substr(s, pos, 4096), ch, "")
        for (i = 1; i <= m; i++) {
            c = ch[i]
            k = index("{[}],: \t\r\n", c)
            if (tokout != "") {
                if (!k) { if (length(tok) < 64) tok = tok c; else tokout = ""; continue }
                if (tok != "null") printf "%s", tok > tokout
                tokout = ""
            }
            if (k > 6) continue
            if (!k) {    # a number, true or false
                if (expect != "v") continue
                value_file(); expect = ""
                if (target != "") { tok = c; tokout = target }
            } else             if (k <= 2) {
                if (++d > maxd) { bad = 2; exit 1 }
                pth[d] = d == 1 ? "" : typ[d - 1] == "{" ? join(pth[d - 1], key[d - 1]) : NOPATH
                typ[d] = c; key[d] = NOPATH; expect = k == 1 ? "k" : "v"
            }
            else if (k == 3 || k == 4) { if (d > 0) d--; expect = "" }
            else if (k == 5) expect = typ[d] == "{" ? "k" : "v"
            else if (k == 6) expect = "v"
        }
    }
    if (tokout != "" && tok != "null") printf "%s", tok > tokout
}
# A string starts (the record ended at a quote): a key, a wanted value, or
# neither.
function string_start() {
    role = ""; kbuf = ""
    if (d < 1 || typ[d] != "{") { expect = ""; return }
    if (expect == "k") { role = "k"; return }
    if (expect != "v") return
    value_file(); expect = ""
    if (target == "" && (pth[d] in every)) { target = dir "/" every[pth[d]]; eachline = 1 }
    if (target != "") role = "v"
}
# How many backslashes end S (found by doubling, then halving, tails).
function trailing(s,   L, k, lo, hi, mid) {
    L = length(s)
    if (s !~ /\\$/) return 0
    if (s !~ /\\\\$/) return 1
    k = 2
    while (2 * k <= L && substr(s, L - 2 * k + 1) !~ /[^\\]/) k *= 2
    lo = k; hi = 2 * k <= L ? 2 * k : L + 1
    if (hi > L && s !~ /[^\\]/) return L
    while (hi - lo > 1) {
        mid = int((lo + hi) / 2)
        if (substr(s, L - mid + 1) !~ /[^\\]/) lo = mid; else hi = mid
    }
    return lo
}
# unescape S into target: in slices of 512 (so that gsub and match stay
# cheap), each cut before a lone backslash near its end so that no escape
# is split; backslash pairs are \001 meanwhile.
function unescape(s,   L, pos, b, carry, i, q) {
    L = length(s); carry = ""
    if (L <= 512) {
        gsub(/\\\\/, "\001", s)
        if (index(s, "\\")) unescape_slice(s); else plain(s)
        return
    }
    for (pos = 1; pos <= L || carry != ""; pos += 512) {
        b = carry substr(s, pos, 512); carry = ""
        gsub(/\\\\/, "\001", b)
        if (pos + 512 <= L && (i = index(substr(b, length(b) - 11), "\\")) > 0) {
            q = length(b) - 12 + i
            if (substr(b, q - 6, 6) ~ /^\\u[dD][89abAB]/) q -= 6    # a surrogate pair stays whole
            carry = substr(b, q); b = substr(b, 1, q - 1)
        }
        unescape_slice(b)
        if (pos > L) break
    }
}
# One slice: the one-letter escapes by gsub, then each \uXXXX (a pair of
# surrogates as one character; each code seen once computed); escapes JSON
# has not are left as they are.
function unescape_slice(b,   i, h, u, lo) {
    if (b ~ /\\[ntrbf\/]/) {
        gsub(/\\n/, "\n", b); gsub(/\\t/, "\t", b); gsub(/\\r/, "\r", b)
        gsub(/\\b/, "\010", b); gsub(/\\f/, "\014", b); gsub(/\\\//, "/", b)
    }
    while ((i = index(b, "\\u")) > 0) {
        h = substr(b, i + 2, 4)
        if (h !~ /^[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]$/) {
            plain(substr(b, 1, i + 1)); b = substr(b, i + 2); continue
        }
        if (i > 1) plain(substr(b, 1, i - 1))
        b = substr(b, i + 6)
        if (h ~ /^[dD][89abAB]/ && b ~ /^\\u[dD][c-fC-F][0-9A-Fa-f][0-9A-Fa-f]/) {
            lo = substr(b, 3, 4); b = substr(b, 7); h = h lo
            if (!(h in u8)) u8[h] = utf8(65536 + (hex(h) - 55296) * 1024 + hex(lo) - 56320)
        } else if (!(h in u8)) u8[h] = utf8(hex(h))
        printf "%s", u8[h] > target
    }
    plain(b)
}
# Text without escapes but backslash pairs (\001).
function plain(b) { if (index(b, "\001")) gsub(/\001/, "\\", b); printf "%s", b > target }
instr == 0 {
    s = $0
    if (length(s) < 16) gsub(/[ \t\r\n]+/, "", s)
    if (s == ":") expect = "v"
    else if (s == ",") expect = typ[d] == "{" ? "k" : "v"
    else if (s != "") {
        if ((plain_len += length(s)) > JSON_PLAIN) { bad = 2; exit 1 }
        structure(s)
    }
    if (++strings > JSON_STRINGS) { bad = 2; exit 1 }
    instr = 1; lastin = 0
    string_start()
    next
}
{ lastin = 1; more = $0 !~ /\\$/ ? 0 : $0 !~ /\\\\$/ ? 1 : trailing($0) % 2 }
role == "" { if (!more) instr = 0; next }
role == "v" {
    if (more) {
        if ($0 == "\\") printf "\"" > target
        else if (index($0, "\\") < length($0)) { unescape(substr($0, 1, length($0) - 1)); printf "\"" > target }
        else printf "%s\"", substr($0, 1, length($0) - 1) > target
        next
    }
    if (index($0, "\\")) unescape($0); else printf "%s", $0 > target
    if (eachline) printf "\n" > target
    instr = 0
    next
}
{
    if (length(kbuf) <= 256) kbuf = kbuf (more ? substr($0, 1, length($0) - 1) "\\\"" : $0)
    if (more) next
    instr = 0; key[d] = length(kbuf) <= 256 ? kbuf : NOPATH; expect = ""
}
END { if (bad || (lastin && role == "v")) exit bad ? bad : 1 }'

# The µCernVM block reader, shared by ucontext's two awk programs: ublock
# takes the lines in order (CRs cut) and prints the first block's settings
# as _UCONTEXT_KEY=value lines, 256 at most; ub_done once the block has
# ended. (Printed at once: a string grown a line at a time costs its whole
# length per line in busybox awk.)
# shq V: V as one sh word that yields V and runs nothing, for the file is
# sourced (by µCernVM, and the OS side sources lines of it). A value wholly
# inside one pair of quotes (cvmfs_http_proxy="a;b") loses them, as sourcing
# µCernVM's unquoted line took them off; plain words stay as µCernVM wrote
# them; the rest goes in single quotes (a quote in it closed, escaped,
# reopened).
UBLOCK_AWK='
function shq(v,   c, inner) {
    c = substr(v, 1, 1)
    if (length(v) >= 2 && (c == "\"" || c == "\047") && substr(v, length(v)) == c) {
        inner = substr(v, 2, length(v) - 2)
        if (!index(inner, c)) v = inner
    }
    if (v ~ /^[A-Za-z0-9_.\/:,+=@%-]*$/) return v
    gsub(/\047/, "\047\\\047\047", v)
    return "\047" v "\047"
}
function ublock(line,   i, k, v, lv) {
    if (ub_done) return
    if (!ub_in) {    # an end marker before any block ends the reading too
        if (line == "[ucernvm-begin]") ub_in = 1; else if (line == "[ucernvm-end]") ub_done = 1
        return
    }
    if (line == "[ucernvm-end]") { ub_done = 1; return }
    i = index(line, "="); if (i < 2) return
    k = toupper(substr(line, 1, i - 1)); v = substr(line, i + 1)
    if (k !~ /^[A-Z0-9_]+$/) return
    lv = tolower(v)
    if (lv == "yes" || lv == "on" || lv == "true") v = 1
    else if (lv == "no" || lv == "off" || lv == "false") v = 0
    printf "_UCONTEXT_%s=%s\n", k, shq(v)
    ub_last = NR
    if (++ub_n == 256) {    # µCernVM knows some 20 keys
        printf "fetch-context: the µCernVM block has more than 256 settings: the rest ignored\n" > "/dev/stderr"
        ub_done = 1
    }
}'

MIME_PARTS=32    # parts of MIME user-data looked into; the rest is not read

# ucontext IN OUT: the first µCernVM block of IN as _UCONTEXT_KEY=value
# lines (µCernVM's rules: exact marker lines, split at the first "=", key
# upper-cased, yes/on/true -> 1 and no/off/false -> 0 in any case; values
# quoted for sh by shq). MIME
# parts are looked into, base64 ones decoded. OUT is empty when no block.
# One awk in the common cases: plain user-data, or MIME where no base64
# part comes before the block; else the parts are decoded and read again.
ucontext() {
    : >"$WORK/parts"
    awk -v dir="$WORK" -v maxparts="$MIME_PARTS" "$UBLOCK_AWK$UCONTEXT_AWK" "$1" >"$2"
    case $? in
        3) _flat=$WORK/flat; flat_parts "$_flat" ;;
        4) _flat=$1 ;;    # a MIME header, but no part: the text is read as it is
        5)  # the text ended inside the block, on a setting: µCernVM reads a
            # line when its line end comes, so one without it does not count
            [ -z "$(tail -c 1 "$1")" ] || sed -i '$d' "$2"
            return 0 ;;
        *) return 0 ;;
    esac
    awk "$UBLOCK_AWK"'
        !ub_in && !/^\[ucernvm-(begin|end)\]\r?$/ { next }
        { sub(/\r$/, ""); ublock($0); if (ub_done) exit }' "$_flat" >"$2"
}

# flat_parts OUT: the parts listed in WORK/parts one after the other in
# OUT, base64 ones decoded, a line end after each.
flat_parts() {
    : >"$1"
    while read -r _part _enc; do
        if [ "$_enc" = base64 ]; then
            b64 "$_part" "$_part.dec" "a base64 MIME part" && cat "$_part.dec" >>"$1"
        else
            cat "$_part" >>"$1"
        fi
        echo >>"$1"
    done <"$WORK/parts"
}

# The first pass. A first line without ":" is no header: plain user-data,
# each line to ublock. Else the header (at most 64 lines, 16 KiB) names the
# MIME boundary; without one, the header lines were plain text after all.
# Each part body goes to WORK/part.N and "WORK/part.N ENCODING" to
# WORK/parts; the lines of parts not in base64 go to ublock. A base64 part
# before the block has ended: exit 3, for ucontext to decode and read again;
# no part with that boundary: exit 4, to read the whole text as it is; plain
# text that ended inside the block on a printed setting: exit 5.
# shellcheck disable=SC2016 # awk's own $0
UCONTEXT_AWK='
function header_was_text(   i) {
    mode = "plain"
    for (i = 1; i <= nh; i++) { ublock(hl[i]); if (ub_done) exit }
}
mode == "plain" {
    if (!ub_in && $0 !~ /^\[ucernvm-(begin|end)\]\r?$/) next
    sub(/\r$/, ""); ublock($0); if (ub_done) exit; next
}
{ sub(/\r$/, "") }
NR == 1 { mode = index($0, ":") ? "header" : "plain" }
mode == "plain" { ublock($0); if (ub_done) exit; next }
mode == "header" {
    if ($0 == "") { if (bnd == "") header_was_text(); else mode = "parts"; next }
    hl[++nh] = $0; hlen += length($0)
    if (nh > 64 || hlen > 16384) { header_was_text(); next }
    hdr = hdr " " $0
    if (match(hdr, /[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]="[^"]*"/))
        bnd = substr(hdr, RSTART + 10, RLENGTH - 11)
    else if (match(hdr, /[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]=[^ ;]+/))
        bnd = substr(hdr, RSTART + 9, RLENGTH - 9)
    next
}
$0 == "--" bnd "--" { exit }
$0 == "--" bnd {
    if (out != "") close(out)
    if (ub_done && !again) exit
    if (++n > maxparts) {
        printf "fetch-context: MIME user-data has more than %d parts: the rest is not read\n",
            maxparts > "/dev/stderr"
        exit
    }
    out = dir "/part." n; printf "" > out; enc = "7bit"; inhdr = 1; next
}
out == "" { next }
inhdr {
    if ($0 == "") {
        inhdr = 0; print out " " enc >> (dir "/parts")
        if (enc == "base64" && !ub_done) again = 1
        next
    }
    if (tolower($0) ~ /^content-transfer-encoding:[ \t]*base64/) enc = "base64"
    next
}
{ print > out; if (enc != "base64" && !again) ublock($0) }
END {
    if (again) exit 3
    if (mode != "plain" && n == 0) exit 4
    if (mode == "plain" && ub_in && !ub_done && ub_last == NR) exit 5
}'
