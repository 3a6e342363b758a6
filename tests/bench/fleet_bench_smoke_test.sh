#!/bin/sh
# Smoke run of fleet_bench at a tiny size (3 hosts x 5 domains, one
# migration, short windows): it must finish, print every figure as a RESULT
# line with the fleet complete, and nothing may be written to etcd at steady
# state, before or after the migration (deterministic: no latency is checked).
set -eu
out=$("$1" --hosts=3 --domains_per_host=5 --repeats=1 --locates=50 --migrations=1 \
  --window_seconds=4 --quiet_seconds=1 --lease_ttl_seconds=3)
echo "$out"
for name in setup_seconds domain_create_ms_per_domain channel_create_ms_per_channel \
    fleet_converged_seconds fleet_domains steady_writes_per_second \
    steady_writes_per_second_per_host steady_revisions steady_keepalives_per_second_per_host \
    steady_xenchand_cpu_us_per_second_max steady_xenchand_rss_mib_max locate_uuid_p50_us \
    locate_uuid_p99_us locate_uuid_max_us locate_name_p50_us locate_name_p99_us \
    list_hosts_p50_us fleet_domain_list_p50_us fleet_domain_list_p99_us \
    migrate_cli_ms_median migrate_to_connected_ms_median migrate_to_located_ms_median \
    migrations after_migration_writes_per_second after_migration_revisions \
    after_migration_keepalives_per_second_per_host; do
  echo "$out" | grep -q "^RESULT $name=[0-9]" || { echo "missing RESULT $name" >&2; exit 1; }
done
echo "$out" | grep -q "^RESULT fleet_domains=15$" || { echo "the fleet is not complete" >&2; exit 1; }
echo "$out" | grep -q "^RESULT migrations=1$" || { echo "no migration measured" >&2; exit 1; }
for tag in steady after_migration; do
  echo "$out" | grep -q "^RESULT ${tag}_writes_per_second=0$" ||
    { echo "$tag: etcd writes at steady state" >&2; exit 1; }
  echo "$out" | grep -q "^RESULT ${tag}_revisions=0$" ||
    { echo "$tag: the etcd revision moved at steady state" >&2; exit 1; }
done
# The counter does see the fleet's writes: a migration makes some.
echo "$out" | grep -q "^RESULT etcd_writes_per_migration=0$" &&
  { echo "no etcd write counted for a migration" >&2; exit 1; }
echo "$out" | grep -q "^RESULT etcd_writes_per_migration=[0-9]" ||
  { echo "missing RESULT etcd_writes_per_migration" >&2; exit 1; }
# Keep-alives are counted (a TTL of 3 s renews every second: a 4 s window sees some).
echo "$out" | grep -q "^RESULT steady_keepalives_per_second_per_host=0$" &&
  { echo "no lease keep-alive counted" >&2; exit 1; }
echo "$out" | grep -q "^goals" || { echo "no goals" >&2; exit 1; }
