#!/usr/bin/env bash
# Times `tlsfleet scan` against nmap --script ssl-enum-ciphers and sslscan on the same real targets
# (openssl s_server presets, a Go server with RC4/3DES, a fake SSLv3 server, PostgreSQL with ssl=on),
# prints medians, ratios and connection counts, and writes the table into BENCHMARKS.md.
# Usage: bench/scan-vs-peers.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
scripts/test-deps.sh >/dev/null
go build -o bin/ ./cmd/tlsfleet
export TLSFLEET_BENCH_SCAN=1 TLSFLEET_BIN="$PWD/bin/tlsfleet" RUNS="${1:-5}"
out=$(go test -count=1 -timeout 30m -run TestScanVsPeers -v ./bench/scanpeers/ 2>&1) || { echo "$out"; exit 1; }
table=$(sed -n '/^BEGIN TABLE$/,/^END TABLE$/p' <<<"$out" | sed '1d;$d')
echo "$table"
python3 - "$table" <<'PY'
import sys, re, datetime
table = sys.argv[1]
path = "BENCHMARKS.md"
text = open(path).read()
block = ("<!-- scan-vs-peers:begin -->\n"
         f"Measured {datetime.date.today()} on this machine by `bench/scan-vs-peers.sh`:\n\n{table}\n"
         "<!-- scan-vs-peers:end -->")
if "<!-- scan-vs-peers:begin -->" in text:
    text = re.sub(r"<!-- scan-vs-peers:begin -->.*?<!-- scan-vs-peers:end -->", lambda m: block, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n## tlsfleet scan vs nmap and sslscan\n\n" + block + "\n"
open(path, "w").write(text)
PY
echo "BENCHMARKS.md updated"
