#!/usr/bin/env bash
# Installs what tlsfleet's tests need on a Debian 12 machine. Idempotent: it installs only what is missing.
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nmap >/dev/null 2>&1 || need+=(nmap)
command -v sslscan >/dev/null 2>&1 || need+=(sslscan) # reference scanner for the scan benchmark
# PostgreSQL server binaries (a STARTTLS target for the scanner tests); Debian keeps them off PATH.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
# The reference for what java.security means: a real JDK 17 (the product's Manager is a Java application).
{ command -v javac >/dev/null 2>&1 && javac -version 2>&1 | grep -q ' 17\.'; } || need+=(openjdk-17-jdk-headless)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc) # the race detector needs cgo

if ((${#need[@]})); then
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || { echo "test-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
		sudo="sudo"
	fi
	echo "test-deps: installing ${need[*]}"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v go >/dev/null 2>&1 || { echo "test-deps: Go is not on PATH (expected /usr/local/go/bin/go, Go 1.26)" >&2; exit 1; }
go mod download
go mod download -modfile=tools/go.mod
pg=$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -1)
echo "test-deps: openssl $(openssl version | cut -d' ' -f2), $(nmap --version | head -1), sslscan $(sslscan --version | sed 's/\x1b\[[0-9;]*m//g' | awk 'NF{print $1; exit}'), $("$pg" --version), $(javac -version 2>&1), $(go version | cut -d' ' -f3)"
