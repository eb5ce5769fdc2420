#!/usr/bin/env bash
# What writing into page-cache pages costs this machine, by where the pages
# come from, and what the machine does with memory it is not using:
#
#   benches/new-pages.sh [DIR] [MIB]
#
# Writes MIB MiB (default 2048) with `dd bs=1M` into a new file in DIR
# (default: the current directory) three ways and prints each pass's system
# time:
#   1. `free`:   pages taken from free memory (a fresh file, nothing freed
#                just before);
#   2. `reused`: the file of pass 1 is removed and written again at once, so
#                the pages it just gave back are taken again;
#   3. `free`:   a second fresh file after a pause of $PAUSE seconds
#                (default 10) in which the freed pages may be given away.
# Then it prints the guest's free-page-reporting counters (virtio-balloon:
# free memory handed back to the host) and any DAMON scheme that pages out
# idle memory, when the kernel exposes them. Needs no root; the files are
# removed at the end. Each pass is the time of one `dd`, so run it on an
# otherwise idle machine.
set -eu
dir=${1:-.}
mib=${2:-2048}
pause=${PAUSE:-10}
reporting=/sys/module/page_reporting/parameters
f1=$(mktemp -p "$dir" new-pages.XXXXXX)
f2=$(mktemp -p "$dir" new-pages.XXXXXX)
trap 'rm -f "$f1" "$f2"' EXIT

reported() { cat "$reporting/reported_kib" 2>/dev/null || echo 0; }

pass() { # NAME FILE
    local t
    t=$( { /usr/bin/time -f '%S %e' dd if=/dev/zero of="$2" bs=1M count="$mib" status=none; } 2>&1 | tail -1)
    printf '%-7s %6d MiB  system %6s s  elapsed %6s s\n' "$1" "$mib" "${t% *}" "${t#* }"
}

before=$(reported)
pass free "$f1"
rm -f "$f1"
pass reused "$f1"
rm -f "$f1"
sleep "$pause"
pass free "$f2"
after=$(reported)

if [ -r "$reporting/reported_kib" ]; then
    echo "free page reporting: on (reported to the host during the passes: $(( (after - before) / 1024 )) MiB;" \
        "since boot: $(( after / 1024 / 1024 )) GiB; page_reporting_order $(cat "$reporting/page_reporting_order"))"
else
    echo "free page reporting: not exposed by this kernel"
fi
for scheme in /sys/kernel/mm/damon/admin/kdamonds/*/contexts/*/schemes/*; do
    [ -r "$scheme/action" ] || continue
    state=$(cat "${scheme%/contexts/*}/state" 2>/dev/null || echo "?")
    age=$(cat "$scheme/access_pattern/age/min")
    aggr=$(cat "${scheme%/schemes/*}/monitoring_attrs/intervals/aggr_us")
    quota=$(cat "$scheme/quotas/bytes")
    echo "DAMON scheme: $(cat "$scheme/action") of regions idle for at least $(( age * aggr / 1000000 )) s," \
        "up to $(( quota >> 20 )) MiB per $(cat "$scheme/quotas/reset_interval_ms") ms (kdamond $state)"
done
