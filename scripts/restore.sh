#!/usr/bin/env bash
# Restore a base backup and replay the WAL archive into a new data directory
# (docs/deployment.md).
#
#   sudo -u postgres bash scripts/restore.sh BASE_BACKUP WAL_ARCHIVE NEW_PGDATA [TARGET_TIME]
#
# BASE_BACKUP is a directory written by scripts/backup.sh; WAL_ARCHIVE the directory that
# archive_command copies WAL segments to; NEW_PGDATA must not exist or be empty (move the
# broken data directory aside first). Without TARGET_TIME every archived segment is replayed;
# with it (e.g. '2026-04-01 14:30:00+08') recovery stops just before that moment. Then start
# PostgreSQL on NEW_PGDATA: it replays the WAL, promotes itself (opens for writes) and removes
# recovery.signal.
set -euo pipefail

die() { printf '[gis-grid restore] error: %s\n' "$*" >&2; exit 1; }

[ "$#" -ge 3 ] && [ "$#" -le 4 ] || \
    die "usage: bash scripts/restore.sh BASE_BACKUP WAL_ARCHIVE NEW_PGDATA [TARGET_TIME]"
base="$1" wal="$2" pgdata="$3" target_time="${4:-}"
[ -f "$base/backup_label" ] || die "$base is not a base backup (no backup_label)"
[ -d "$wal" ] || die "WAL archive $wal not found"
wal="$(cd "$wal" && pwd)"
if [ -e "$pgdata" ] && [ -n "$(ls -A "$pgdata")" ]; then
    die "$pgdata is not empty: move the old data directory aside first"
fi

mkdir -p "$pgdata"
chmod 700 "$pgdata"
cp -a "$base/." "$pgdata/"
rm -f "$pgdata/postmaster.pid" "$pgdata/backup_label.wal"
{
    echo ""
    echo "# gis-grid restore of $(basename "$base") on $(date -u +%FT%TZ)"
    echo "restore_command = 'cp \"$wal/%f\" \"%p\"'"
    echo "recovery_target_action = 'promote'"
    if [ -n "$target_time" ]; then
        echo "recovery_target_time = '$target_time'"
    fi
} >>"$pgdata/postgresql.auto.conf"
touch "$pgdata/recovery.signal"
printf 'restored %s into %s: start PostgreSQL on it to replay %s\n' "$base" "$pgdata" "$wal" >&2
