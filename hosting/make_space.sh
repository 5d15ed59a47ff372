#!/usr/bin/env bash
# Fills a Hugging Face Space's clone with what its Docker build needs, or makes the lake snapshot
# both Spaces download (docs/hosting.md).
#
#   hosting/make_space.sh dashboard <clone of your dashboard Space>
#   hosting/make_space.sh chatbot <clone of your chatbot Space>
#   hosting/make_space.sh lake <file.tar.gz> [table to leave out ...]
#
# A Space is built from its repository's root: it gets the Space folder's Dockerfile and
# README.md there, and every file the Dockerfile copies at its path in this repo. The
# Dockerfile's COPY lines are the one list of those files. Files git ignores are left out.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

die() {
  echo "make_space: $*" >&2
  exit 1
}

space() {
  local folder=$repo/hosting/$1-space target sources
  [ -d "$2/.git" ] || die "$2 is not a clone of your Space: git clone https://huggingface.co/spaces/<you>/<name> first"
  target=$(cd "$2" && pwd)
  [ "$target" != "$repo" ] || die "the target is this repository; give the clone of your Space"
  mapfile -t sources < <(awk '$1 == "COPY" { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$folder/Dockerfile")
  # Replaced, not merged: a file deleted here disappears from the Space too.
  for top in $(printf '%s\n' "${sources[@]}" | cut -d/ -f1 | sort -u); do
    rm -rf "${target:?}/$top"
  done
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard -- "${sources[@]}" |
    tar --null -T - -cf - | tar -xf - -C "$target")
  for source in "${sources[@]}"; do
    [ -e "$target/$source" ] || die "$source is missing from this repository"
  done
  cp "$folder/Dockerfile" "$folder/README.md" "$target/"
  echo "make_space: $target holds the $1 Space; commit and push it (cd $target && git add -A && git commit -m ... && git push)"
}

lake() {
  local out=$1 state excludes=()
  shift
  # The stream job and the scorer commit while they run: a copy taken then can name files it lacks.
  state=$(cd "$repo" && python3 -c 'import sys
from stack import runner as stack
from lakewatch.settings import load
settings = load()
for writer in ("stream", "scorer"):
    if stack.running(settings, writer):
        sys.exit("make_space: the " + writer + " service is running: `make down` first")
print(settings.state_dir)')
  [ -d "$state/lake" ] || die "no lake at $state/lake: \`make up\` writes it"
  for table in "$@"; do
    excludes+=(--exclude="lake/$table")
  done
  tar -czf "$out" -C "$state" "${excludes[@]}" lake
  echo "make_space: $out ($(du -h "$out" | cut -f1)); upload it where LAKE_SNAPSHOT_URL will point"
}

case "${1:-}" in
  dashboard | chatbot) [ $# -eq 2 ] || die "usage: $0 $1 <clone of your Space>"; space "$1" "$2" ;;
  lake) [ $# -ge 2 ] || die "usage: $0 lake <file.tar.gz> [table to leave out ...]"; shift; lake "$@" ;;
  *) die "usage: $0 dashboard|chatbot <clone of your Space> | lake <file.tar.gz> [table to leave out ...]" ;;
esac
