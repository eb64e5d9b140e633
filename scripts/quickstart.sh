#!/usr/bin/env bash
# The README's quick start, as a script that runs as written against a running system
# (scripts/up.sh): registers a unique user, verifies the e-mail through Mailpit's API,
# signs in, holds a seat of the demo event, books it, pays with the approved test card,
# waits for the ticket and prints it. Each step prints the request and the answer, and
# the script stops at the first unexpected status with that answer.
#
#   scripts/quickstart.sh
#
# Environment (defaults are the dev profile's):
#   API          the gateway                 http://127.0.0.1:8080
#   MAILPIT_API  Mailpit's HTTP API          http://127.0.0.1:8025
#   EVENT        a published event id        .data/dev/demo-event-id (made by up.sh)
#   OUT          where the QR image goes     .data/dev/quickstart
# Needs bash, curl, grep and sed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
API=${API:-http://127.0.0.1:8080}
MAILPIT_API=${MAILPIT_API:-http://127.0.0.1:8025}
EVENT=${EVENT:-$(cat "$ROOT/.data/dev/demo-event-id" 2>/dev/null || true)}
OUT=${OUT:-$ROOT/.data/dev/quickstart}
RUN=$(date +%s)-$RANDOM
EMAIL="quickstart-$RUN@example.com"
PASSWORD="correct horse battery"
BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT

die() { echo "quickstart: $*" >&2; exit 1; }
[ -n "$EVENT" ] || die "no event: run scripts/up.sh first (it seeds the demo event) or set EVENT"

# call METHOD PATH EXPECTED_STATUSES [JSON] [extra curl args...]: prints the exchange,
# leaves the answer in $BODY, and stops unless the status is one of EXPECTED_STATUSES.
STATUS=
call() {
  local method=$1 path=$2 expect=$3 data=${4:-}
  shift 4 || shift $#
  local args=(-sS -o "$BODY" -w '%{http_code}' -X "$method" "$API$path")
  [ -n "${TOKEN:-}" ] && args+=(-H "authorization: Bearer $TOKEN")
  [ -n "$data" ] && args+=(-H 'content-type: application/json' -d "$data")
  echo "> $method $path $data"
  STATUS=$(curl "${args[@]}" "$@") || die "$API is not answering (is scripts/up.sh running?)"
  echo "< $STATUS $(head -c 600 "$BODY")"
  case " $expect " in
    *" $STATUS "*) ;;
    *) die "$method $path answered $STATUS, expected $expect" ;;
  esac
}

# field NAME: the first string value of "NAME" in $BODY (ids, tokens; never nested text).
field() {
  local v
  v=$(grep -o "\"$1\":\"[^\"]*\"" "$BODY" | head -n 1 | sed -E 's/.*:"(.*)"/\1/') || true
  [ -n "$v" ] || die "no \"$1\" in the answer: $(head -c 600 "$BODY")"
  echo "$v"
}

echo "== 1. register $EMAIL"
call POST /v1/auth/register 201 "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Quick Start\"}"

echo "== 2. verify the e-mail with the token Mailpit caught"
vtoken=
for _ in $(seq 1 50); do
  ids=$(curl -sS "$MAILPIT_API/api/v1/search?query=to:%22$EMAIL%22" | grep -o '"ID":"[^"]*"' | sed -E 's/.*:"(.*)"/\1/' || true)
  for id in $ids; do
    vtoken=$(curl -sS "$MAILPIT_API/api/v1/message/$id" | grep -o 'Verification token: [A-Za-z0-9_-]*' | head -n 1 | sed 's/Verification token: //' || true)
    [ -n "$vtoken" ] && break
  done
  [ -n "$vtoken" ] && break
  sleep 0.2
done
[ -n "$vtoken" ] || die "no verification mail for $EMAIL at $MAILPIT_API within 10 s"
call POST /v1/auth/verify 200 "{\"token\":\"$vtoken\"}"

echo "== 3. sign in"
call POST /v1/auth/login 200 "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"
TOKEN=$(field accessToken)

echo "== 4. an available seat of event $EVENT"
call GET "/v1/events/$EVENT/seats?status=available&limit=1" 200
SEAT=$(field id)

echo "== 5. hold it (each request its own Idempotency-Key)"
call POST "/v1/events/$EVENT/holds" 201 "{\"seatIds\":[\"$SEAT\"]}" -H "Idempotency-Key: qs-hold-$RUN"
HOLD=$(field id)

echo "== 6. book the hold"
call POST /v1/bookings 201 "{\"holdId\":\"$HOLD\"}" -H "Idempotency-Key: qs-book-$RUN"
BOOKING=$(field id)

echo "== 7. pay with the approved test card"
call POST "/v1/bookings/$BOOKING/payments" "201 202" '{"method":"card","cardNumber":"4242424242424242"}' -H "Idempotency-Key: qs-pay-$RUN"
if [ "$STATUS" = 202 ]; then
  # Still in flight: its result appears at the Location it named.
  COMMAND=$(field commandId)
  for _ in $(seq 1 60); do
    call GET "/v1/commands/$COMMAND" "201 202"
    [ "$STATUS" = 201 ] && break
    sleep 1
  done
  [ "$STATUS" = 201 ] || die "the payment was not applied within 60 s"
fi

echo "== 8. the ticket (issued moments after the payment)"
TICKET=
for _ in $(seq 1 50); do
  call GET "/v1/bookings/$BOOKING/tickets" 200
  TICKET=$(grep -o '"id":"[^"]*"' "$BODY" | head -n 1 | sed -E 's/.*:"(.*)"/\1/' || true)
  [ -n "$TICKET" ] && break
  sleep 0.2
done
[ -n "$TICKET" ] || die "no ticket for booking $BOOKING within 10 s"
call GET "/v1/tickets/$TICKET" 200
mkdir -p "$OUT"
echo "> GET /v1/tickets/$TICKET/qr.png"
code=$(curl -sS -o "$OUT/ticket-$TICKET.png" -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$API/v1/tickets/$TICKET/qr.png")
echo "< $code ($(wc -c <"$OUT/ticket-$TICKET.png") bytes of PNG)"
[ "$code" = 200 ] || die "GET /v1/tickets/$TICKET/qr.png answered $code"
echo
echo "Done: $EMAIL holds ticket $TICKET for booking $BOOKING (QR image: $OUT/ticket-$TICKET.png)."
