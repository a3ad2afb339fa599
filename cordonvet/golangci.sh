#!/usr/bin/env bash
# Runs cordonvet through golangci-lint's module plugin system on the corpus
# (testdata/src/corpus) and checks that it reports exactly what the
# standalone command reports there.
#
# It installs golangci-lint at a pinned version from the module proxy with
# go install, then builds the custom binary the way `golangci-lint custom`
# does (the plugin's import added to cmd/golangci-lint/plugins.go, a
# replace to this checkout, go mod tidy, go build), but from the module
# proxy's copy of golangci-lint's source rather than a git clone, so it
# needs nothing but the module proxy. The binary is cached under
# $CORDONVET_GCL_DIR (default /tmp/cordonvet-gcl) per version and plugin
# source hash.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
ver=v2.12.2
work=${CORDONVET_GCL_DIR:-/tmp/cordonvet-gcl}
mkdir -p "$work"

GOBIN=$work/bin go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$ver"
echo "golangci.sh: $("$work/bin/golangci-lint" version 2>&1 | head -n1)"

hash=$(cat go.mod go.sum ./*.go gclplugin/*.go | sha256sum | cut -c1-12)
bin=$work/custom-gcl-$ver-$hash
if [ ! -x "$bin" ]; then
  src=$(go mod download -json "github.com/golangci/golangci-lint/v2@$ver" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$work/src"
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  (
    cd "$work/src"
    printf 'package main\n\nimport _ "github.com/cordon-sec/cordon/cordonvet/gclplugin"\n' >cmd/golangci-lint/plugins.go
    go mod edit -require=github.com/cordon-sec/cordon/cordonvet@v0.0.0 \
      -replace=github.com/cordon-sec/cordon/cordonvet="$here"
    GOFLAGS=-mod=mod go mod tidy
    go build -o "$bin" ./cmd/golangci-lint
  )
  rm -rf "$work/src"
fi

cat >"$work/golangci.yml" <<'YML'
version: "2"
linters:
  default: none
  enable:
    - cordonvet
  settings:
    custom:
      cordonvet:
        type: module
        description: request-scoped values that escape their request
issues:
  max-issues-per-linter: 0
  max-same-issues: 0
YML

# The corpus is a GOPATH-layout tree (testdata/src) with stand-ins for the
# frameworks at their import paths.
gopath() { env GOPATH="$here/testdata" GO111MODULE=off GOWORK=off GOFLAGS= "$@"; }
go build -o "$work/cordonvet" ./cmd/cordonvet
cd testdata/src/corpus
want=$(gopath "$work/cordonvet" -test=false . 2>&1 | grep -oE '^[^ ]*\.go:[0-9]+' | sed 's|.*/||' | sort -u || true)
got=$(gopath "$bin" run --config "$work/golangci.yml" --output.text.path stdout --show-stats=false ./... 2>&1 |
  grep '(cordonvet)' | grep -oE '^[^ ]*\.go:[0-9]+' | sed 's|.*/||' | sort -u || true)
n=$(printf '%s\n' "$want" | grep -c . || true)
if [ "$n" -lt 25 ]; then
  echo "golangci.sh: the standalone cordonvet reported only $n lines on the corpus" >&2
  exit 1
fi
if [ "$want" != "$got" ]; then
  echo "golangci.sh: golangci-lint's cordonvet differs from the standalone command on the corpus:" >&2
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") >&2 || true
  exit 1
fi
echo "golangci.sh: golangci-lint $ver with the cordonvet plugin reports the same $n corpus lines as cordonvet"
