#!/usr/bin/env bash
# Base backup of the PostgreSQL cluster holding the platform's database (docs/deployment.md).
#
#   sudo -u postgres bash scripts/backup.sh DEST_DIR
#
# Writes DEST_DIR/base-<UTC timestamp>/ with pg_basebackup (plain format, the WAL needed for a
# consistent copy streamed into it, fast checkpoint), verifies it with pg_verifybackup, and
# writes backup_label.wal: the first WAL segment the backup needs (for pg_archivecleanup).
# Together with the WAL archive (archive_command) it restores to any later moment:
# scripts/restore.sh. The connection is libpq's: PGHOST, PGPORT, PGUSER (a REPLICATION role).
# PG_BINDIR chooses the PostgreSQL binaries (default: the newest in /usr/lib/postgresql).
set -euo pipefail

die() { printf '[gis-grid backup] error: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 1 ] || die "usage: bash scripts/backup.sh DEST_DIR"
dest="$1"
bindir="${PG_BINDIR:-/usr/lib/postgresql/$(ls -1 /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)/bin}"
[ -x "$bindir/pg_basebackup" ] || die "pg_basebackup not found in $bindir (set PG_BINDIR)"
mkdir -p "$dest"

target="$dest/base-$(date -u +%Y%m%dT%H%M%SZ)"
[ ! -e "$target" ] || die "$target exists already"
"$bindir/pg_basebackup" -D "$target" -Fp -X stream -c fast --no-password \
    -l "gis-grid $(date -u +%FT%TZ)" >&2
"$bindir/pg_verifybackup" -q "$target" || die "pg_verifybackup found problems in $target"
# "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)" -> the segment's name.
sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]*\)).*/\1/p' "$target/backup_label" \
    >"$target/backup_label.wal"
[ -s "$target/backup_label.wal" ] || die "no START WAL LOCATION in $target/backup_label"
printf '%s\n' "$target"
