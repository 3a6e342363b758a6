#!/usr/bin/env bash
# The man pages tools/man builds are the programs' --help, rendered: for each
# (binary, page) pair, groff renders the page without a warning, and every
# line of `binary --help` appears in the rendered text, in order (white space
# collapsed; the generator turns "NAME: summary." into the NAME section,
# "Usage: X" into the SYNOPSIS and "Heading:" lines into subsections). Then
# help_to_man.py itself: roff-hostile help lines render back verbatim, and
# help without a usage line is refused.
#
#   man_pages_test.sh HELP_TO_MAN BINARY PAGE [BINARY PAGE]...
set -euo pipefail
gen=$1
shift
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failed=0

render() {  # render PAGE: plain text, one line per output line, spaces collapsed
  groff -man -Tascii -P-cbu -ww "$1" 2>"$tmp/warnings" | sed -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//'
  if [ -s "$tmp/warnings" ]; then
    echo "groff warnings for $1:"
    cat "$tmp/warnings"
    return 1
  fi
}

# same_lines NAME HELP_FILE RENDERED_FILE: every help line, as the page shows
# it, in order.
same_lines() {
  local name=$1 help=$2 rendered=$3 line want n=0 pos=0 found
  while IFS= read -r line; do
    n=$((n + 1))
    want=$(sed -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' <<<"$line")
    [ -n "$want" ] || continue
    if [ "$n" -eq 1 ] && [[ $want == "$name: "* ]]; then
      want="$name - ${want#"$name: "}"
      want=${want%.}
    fi
    case $want in
      [Uu]sage:\ *) want=${want#*: } ;;
    esac
    [[ $line =~ ^[^[:space:]].*:$ ]] && want=${want%:}
    found=$(tail -n +"$((pos + 1))" "$rendered" | grep -nFx -- "$want" | head -n 1 | cut -d: -f1 || true)
    if [ -z "$found" ]; then
      echo "FAIL $name: help line $n is not in the page (after its line $pos): $line"
      return 1
    fi
    pos=$((pos + found))
  done <"$help"
}

while [ $# -ge 2 ]; do
  bin=$1 page=$2
  shift 2
  name=$(basename "$bin")
  "$bin" --help >"$tmp/$name.help"
  if ! render "$page" >"$tmp/$name.txt"; then
    failed=1
  elif ! same_lines "$name" "$tmp/$name.help" "$tmp/$name.txt"; then
    failed=1
  else
    echo "ok   $(basename "$page"): $(grep -c . "$tmp/$name.help") help lines, in order, no groff warnings"
  fi
done

# The generator on help text that roff would otherwise eat.
cat >"$tmp/hostile.help" <<'HELP'
hostile: a program whose help looks like roff.

Usage: hostile [--flag] -x

.TH NOT A TITLE
'also a request
  back\slash \fB not bold \- not a dash
  --double-dash -single "quotes" `ticks`
Section:
  .indented dot
HELP
python3 "$gen" --name hostile --section 1 <"$tmp/hostile.help" >"$tmp/hostile.1"
if render "$tmp/hostile.1" >"$tmp/hostile.txt" &&
   same_lines hostile "$tmp/hostile.help" "$tmp/hostile.txt"; then
  echo "ok   roff-hostile help renders back verbatim"
else
  failed=1
fi
if printf 'nousage: no usage line here.\n  --x\n' | python3 "$gen" --name nousage --section 1 >/dev/null 2>&1; then
  echo "FAIL help without a usage line was accepted"
  failed=1
else
  echo "ok   help without a usage line is refused"
fi
exit "$failed"
