#!/usr/bin/env bash
# Fails if a card number the tests use appears in any of the given log files.
#
#   scripts/check-no-card-numbers.sh LOG...
#
# The card numbers are every Luhn-valid 13-19 digit literal in the tests (tests/) and in
# the simulated gateway's card table (domain/src/entities/card.rs), looked for as bare
# digits and as groups of four separated by spaces or dashes (the forms the API
# accepts). A match is reported as file:line and the card's last four digits only, so
# this check never prints a card number itself. Missing log files are skipped; no log
# file at all is an error (the check would prove nothing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$#" = 0 ]; then
  echo "usage: $0 LOG..." >&2
  exit 2
fi

luhn_ok() {
  local n=$1 sum=0 i d len=${#1} alt=0
  for ((i = len - 1; i >= 0; i--)); do
    d=${n:i:1}
    if [ "$alt" = 1 ]; then
      d=$((d * 2))
      [ "$d" -gt 9 ] && d=$((d - 9))
    fi
    sum=$((sum + d))
    alt=$((1 - alt))
  done
  [ $((sum % 10)) = 0 ]
}

mapfile -t candidates < <(
  grep -rhoE '(^|[^0-9])[2-6][0-9]{12,18}([^0-9]|$)' "$ROOT/tests" "$ROOT/domain/src/entities/card.rs" 2>/dev/null |
    grep -oE '[0-9]{13,19}' | sort -u
)
pans=()
for c in "${candidates[@]}"; do
  luhn_ok "$c" && pans+=("$c")
done
if [ "${#pans[@]}" = 0 ]; then
  echo "no test card numbers found under tests/ and domain/src/entities/card.rs" >&2
  exit 2
fi

logs=()
for f in "$@"; do
  [ -f "$f" ] && logs+=("$f")
done
if [ "${#logs[@]}" = 0 ]; then
  echo "none of the given log files exists: $*" >&2
  exit 2
fi

found=0
for pan in "${pans[@]}"; do
  # Bare digits, and groups of four joined by a space or a dash.
  grouped=$(printf '%s' "$pan" | sed -E 's/([0-9]{4})/\1[ -]?/g; s/\[ -\]\?$//')
  pattern="(^|[^0-9])($pan|$grouped)([^0-9]|$)"
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    echo "card number ending ${pan: -4} found at $hit"
    found=1
  done < <(grep -HnoE "$pattern" "${logs[@]}" 2>/dev/null | cut -d: -f1,2 | sort -u || true)
done
if [ "$found" = 1 ]; then
  exit 1
fi
echo "no card number (${#pans[@]} test cards) in ${#logs[@]} log file(s)"
