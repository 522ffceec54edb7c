#!/bin/bash
# Self-test for check_html.py: proves it passes a good self-contained page and
# fails (exit 1, for the right reason) on a throwing script, a console.error,
# a network resource and a missing --expect text.
# Usage: tests/report/check_html_selftest.sh   (needs /usr/bin/chromium)
set -euo pipefail

CHECK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/check_html.py"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
FAILURES=0

page() {  # page NAME BODY...: write a minimal HTML page into $TMP
  local name=$1; shift
  printf '<!doctype html><html><head><meta charset="utf-8"><title>%s</title></head>\n<body>%s</body></html>\n' \
    "$name" "$*" > "$TMP/$name.html"
}

# expect_pass NAME [ARGS...]: checker must exit 0 and write a real PNG.
expect_pass() {
  local name=$1; shift
  local rc=0
  /usr/bin/python3 "$CHECK" "$@" "$TMP/$name.html" "$TMP/$name.png" > "$TMP/out" 2>&1 || rc=$?
  if [[ $rc -eq 0 && -s "$TMP/$name.png" && "$(head -c 8 "$TMP/$name.png" | od -An -tx1 | tr -d ' ')" == 89504e470d0a1a0a ]]; then
    echo "ok   $name.html${*:+ $*}: passes, $(stat -c %s "$TMP/$name.png")-byte PNG"
  else
    echo "FAIL $name: expected a pass with a PNG, got exit $rc:"; sed 's/^/     /' "$TMP/out"
    FAILURES=$((FAILURES + 1))
  fi
}

# expect_fail NAME REASON [ARGS...]: checker must exit 1 and mention REASON.
expect_fail() {
  local name=$1 reason=$2; shift 2
  local rc=0
  /usr/bin/python3 "$CHECK" "$@" "$TMP/$name.html" "$TMP/$name.png" > "$TMP/out" 2>&1 || rc=$?
  if [[ $rc -eq 1 ]] && grep -qF -- "$reason" "$TMP/out"; then
    echo "ok   $name.html${*:+ $*}: fails with \"$(grep -F -- "$reason" "$TMP/out" | head -1 | sed 's/^ *- //')\""
  else
    echo "FAIL $name: expected exit 1 mentioning '$reason', got exit $rc:"; sed 's/^/     /' "$TMP/out"
    FAILURES=$((FAILURES + 1))
  fi
}

SVG='<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60"><rect width="120" height="60" fill="teal"/><text x="10" y="35" fill="white">chart</text></svg>'
page good "<h1>Seedproof report</h1><p>All runs reproduced.</p>$SVG<script>console.log('fine');</script>"
page throws "<p>text</p><script>throw new Error('selftest boom');</script>"
page console "<p>text</p><script>console.error('selftest console error');</script>"
page network '<p>text</p><img src="http://example.com/x.png">'

expect_pass good --expect reproduced --expect chart              # (a)
expect_fail throws "uncaught exception: Error: selftest boom"    # (b)
expect_fail console "console.error: selftest console error"      # (c)
expect_fail network "external resource requested: http://example.com/x.png"  # (d)
expect_fail good "expected text not found: 'nonexistentword'" --expect nonexistentword  # (e)

if [[ $FAILURES -ne 0 ]]; then
  echo "check_html selftest: $FAILURES unexpected result(s)"; exit 1
fi
echo "check_html selftest: all 5 cases behaved as expected"
