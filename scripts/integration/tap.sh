# TAP-style reporting shared by the integration scripts: `ok NAME`, `not_ok NAME [DETAIL]`
# (DETAIL shown as `#` lines), and the counts for the closing "N passed, N failed" line.
# Sourced, not run.
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /' | head -30
    return 0
}
