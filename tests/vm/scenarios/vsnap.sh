# vsnap.sh — virtual snapshots in the guest (tests/vm/vsnap-test, CTest vm.vsnap).
# Environment: VS_RET_WWID (retention disk), VS_TGT_WWID (the target).
# Every check prints "PASS <what>" or "FAIL <what>"; the last line counts them.
set -u
finish() {
  mt_summary vsnap
  exit $?
}
die() { mt_fail "$*"; tail -n 40 /w/agent.log; finish; }

ip link set lo up
ret=$(mt_find_wwid "$VS_RET_WWID") || die "no retention disk $VS_RET_WWID"
tgt=$(mt_find_wwid "$VS_TGT_WWID") || die "no target disk $VS_TGT_WWID"
map=mt-$VS_TGT_WWID
size=$(mt_disk_bytes "$tgt")
mkdir -p /w
mtctl retention prepare "/dev/$ret" --force --mount /w/retention --fstab /w/fstab >/dev/null ||
  die "retention prepare /dev/$ret"
cat > /w/agent.toml <<EOT
[agent]
log_level = "info"
[data]
listen = "127.0.0.1:9443"
tls_dir = "/w/tls"
credentials_dir = "/w/credentials"
[control]
socket = "/w/control.sock"
[retention]
dir = "/w/retention"
segment_size = "16MiB"
low_space_min = "16MiB"
EOT
ctl() { mtctl --config /w/agent.toml "$@"; }
start_agent() {
  mt-agent --config /w/agent.toml --foreground >> /w/agent.log 2>&1 &
  agent_pid=$!
  for _ in $(seq 1 150); do
    ctl status --json > /w/st.json 2>/dev/null && grep -q '"daemon_running": true' /w/st.json && return 0
    sleep 0.2
  done
  return 1
}
wait_applied() {  # backlog 0 (everything received is applied)
  for _ in $(seq 1 300); do
    ctl pairs --json | grep -q '"backlog_records": "0"' && return 0
    sleep 0.2
  done
  return 1
}
applied_seq() { ctl pairs --json | jq -r '.. | objects | select(has("applied_seq")) | .applied_seq' | head -n1; }
same() {  # same DEVICE MODEL: byte for byte, page cache dropped first
  sync; echo 3 > /proc/sys/vm/drop_caches
  cmp "$1" "$2" >/dev/null
}
model() {  # model TAG OUT
  mtsend rebuild --record /w/rec.txt --disks 1 --disk-size "$size" --disk 0 --tag "$1" --out "$2" >/dev/null
}
app_tag() { jq -r "[.streams[0].points[] | select(.kind == \"app\")][$1].name" /w/points.json; }

ctl pair add --stream s1 --disk "0:$VS_TGT_WWID:src0" --json > /w/pair.json || die "pair add"
key=$(jq -r .credential_hex /w/pair.json)
start_agent || die "mt-agent did not start"
fp=$(jq -r .tls_fingerprint /w/st.json)
S="--to 127.0.0.1:9443 --stream s1 --key-hex $key --fingerprint $fp"

t=$(dmsetup table "$map" 2>/dev/null)
mt_check "the target is written through the agent's map $map (linear over /dev/$tgt): $t" \
  sh -c "echo '$t' | grep -q ' linear '"

truncate -s "$size" /tmp/src0.img
mtsend resync $S --source /tmp/src0.img --disk 0 --no-progress || die "resync"
mtsend workload $S --disks 1 --disk-size "$size" --count 600 --rate 300 --sizes 4k..128k \
  --overlap 0.3 --tag-every-items 100 --seed 7 --record /w/rec.txt || die "first workload"
wait_applied || die "apply did not catch up"

# release drops the map (the VMDK could go), attach takes the disk back.
mt_check "release of the target" ctl release "$VS_TGT_WWID"
mt_check "after release there is no map $map" sh -c "! dmsetup info '$map' >/dev/null 2>&1"
mt_check "attach of the target" ctl attach "$VS_TGT_WWID"
sleep 1
mt_check "after attach the map $map is back" dmsetup info "$map"

ctl points --stream s1 --json > /w/points.json
t1=$(app_tag 1) t2=$(app_tag 3)
echo "tags for the vsnaps: $t1 $t2"
model "$t1" /tmp/m1.img && model "$t2" /tmp/m2.img || die "mtsend rebuild"

# The workload goes on writing while the vsnaps are made and checked.
mtsend workload $S --disks 1 --disk-size "$size" --count 3600 --rate 120 --sizes 4k..128k \
  --overlap 0.3 --tag-every-items 150 --seed 7 --record /w/rec.txt --retry-for 120 > /w/w2.log 2>&1 &
wl=$!
sleep 2
c0=$(applied_seq)
ctl vsnap create "$VS_TGT_WWID" --at "$t1" --name v1 --json > /w/v1.json || die "vsnap create v1"
ctl vsnap create "$VS_TGT_WWID" --at "$t2" --name v2 --json > /w/v2.json || die "vsnap create v2"
c1=$(applied_seq)
# The stream pauses only while a snapshot is set up, not while it is filled.
mt_check "replication went on while the vsnaps were made (applied seq $c0 -> $c1)" [ "$c1" -gt $((c0 + 100)) ]
d1=$(jq -r .device /w/v1.json) d2=$(jq -r .device /w/v2.json)
mt_check "v1 is ready at $d1" [ "$(jq -r .state /w/v1.json)" = ready -a -b "$d1" ]
mt_check "v2 is ready at $d2" [ "$(jq -r .state /w/v2.json)" = ready -a -b "$d2" ]
t=$(dmsetup table "$map")
mt_check "the origin map is snapshot-origin while vsnaps exist: $t" sh -c "echo '$t' | grep -q ' snapshot-origin '"
mt_check "v1 equals the model at $t1 byte for byte" same "$d1" /tmp/m1.img
mt_check "v2 equals the model at $t2 byte for byte" same "$d2" /tmp/m2.img
wait "$wl"; rc=$?
mt_check "the workload that ran while the vsnaps were made finished (rc $rc)" [ "$rc" -eq 0 ]
tail -n 1 /w/w2.log

# More writes through the origin after the vsnaps exist, and mt-agent killed
# while they run (this workload lasts 12 s; the kill comes after ~5 s, and
# the check below makes sure it is still running then, so the restart really
# happens under load however slow the guest is).
mtsend workload $S --disks 1 --disk-size "$size" --count 4800 --rate 100 --sizes 4k..128k \
  --overlap 0.3 --tag-every-items 150 --seed 7 --record /w/rec.txt --retry-for 120 > /w/w3.log 2>&1 &
wl=$!
sleep 2
c2=$(applied_seq)
sleep 3
a1=$(applied_seq)
mt_check "writes were applied through the origin after the vsnaps were made (applied seq $c2 -> $a1)" [ "$a1" -gt "$c2" ]
mt_check "the workload is still running when mt-agent is killed" kill -0 "$wl"
kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null
start_agent || die "mt-agent did not restart"
mt_check "after kill -9 and restart the vsnaps are listed ready" \
  sh -c "mtctl --config /w/agent.toml vsnap list --json | jq -e '[.vsnaps[] | select(.state == \"ready\")] | length == 2' >/dev/null"
wait "$wl"; rc=$?
mt_check "the workload finished through the restart (rc $rc)" [ "$rc" -eq 0 ]
tail -n 2 /w/w3.log
wait_applied || die "apply did not catch up after the restart"
mt_check "v1 equals the model at $t1 after the restart and the whole workload" same "$d1" /tmp/m1.img
mt_check "v2 equals the model at $t2 after the restart and the whole workload" same "$d2" /tmp/m2.img

# A reboot, simulated: mt-agent stopped, every map and loop device gone (they
# are not persistent). The vsnaps are listed inactive; the next start of
# mt-agent attaches them again from their COW files before it writes the
# disk, and they still show their points.
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null
dmsetup remove "$map-vs-v1" && dmsetup remove "$map-vs-v2" && dmsetup remove "$map" ||
  mt_fail "removing the maps to simulate a reboot"
mt_check "after the 'reboot' the vsnaps are listed inactive" \
  sh -c "mtctl --config /w/agent.toml vsnap list --json | jq -e '[.vsnaps[] | select(.state == \"inactive\")] | length == 2' >/dev/null"
mt_check "no loop device is left attached" sh -c "! grep -q vsnap /sys/block/loop*/loop/backing_file 2>/dev/null"
start_agent || die "mt-agent did not start after the 'reboot'"
t=$(dmsetup table "$map")
mt_check "mt-agent re-made the origin as snapshot-origin: $t" sh -c "echo '$t' | grep -q ' snapshot-origin '"
mt_check "after the 'reboot' the vsnaps are ready again" \
  sh -c "mtctl --config /w/agent.toml vsnap list --json | jq -e '[.vsnaps[] | select(.state == \"ready\")] | length == 2' >/dev/null"
mt_check "v1 equals the model at $t1 after the 'reboot'" same "$d1" /tmp/m1.img
mt_check "v2 equals the model at $t2 after the 'reboot'" same "$d2" /tmp/m2.img

exec 3< "$d1"
out=$(ctl vsnap remove v1 2>&1); rc=$?
mt_check "remove of an open vsnap is refused: $out" sh -c "[ $rc -ne 0 ] && echo '$out' | grep -q 'in use'"
exec 3<&-
out=$(ctl release "$VS_TGT_WWID" 2>&1); rc=$?
mt_check "release is refused while vsnaps exist: $out" sh -c "[ $rc -ne 0 ] && echo '$out' | grep -q 'virtual snapshots'"
ctl attach "$VS_TGT_WWID" >/dev/null 2>&1 || true  # the refused release left the stream paused

# A create cut short: mt-agent, whose job makes the vsnap, killed once the
# snapshot map exists (the fill runs while the stream replicates again). At
# its next start the job is failed, not run again; the vsnap is listed
# interrupted and removable, the stream runs, the other vsnaps are untouched.
# Its point is taken from the points the retention holds now, not $t2: the
# workloads since v2 write much of the 512 MiB volume, and low space may
# have pruned the oldest points (v2 no longer needs its own).
ctl points --stream s1 --json > /w/points.json
t4=$(app_tag 1)
echo "point for v3: $t4 (oldest app point held: $(app_tag 0); $t2 held: $(jq -r "[.streams[0].points[] | select(.name == \"$t2\")] | length" /w/points.json))"
ctl vsnap create "$VS_TGT_WWID" --at "$t4" --name v3 --job-id v3-create > /w/v3.log 2>&1 &
cpid=$!
# The map's name in sysfs is cheaper to poll than a dmsetup process (slow
# under TCG): the kill must land while the job runs.
for _ in $(seq 1 1000); do
  grep -qsx -- "$map-vs-v3" /sys/block/dm-*/dm/name && break
  kill -0 "$cpid" 2>/dev/null || break
  sleep 0.02
done
if kill -0 "$cpid" 2>/dev/null; then
  kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null
  wait "$cpid"; rc=$?
  mt_check "mtctl following the job fails when mt-agent dies (rc $rc): $(tail -n 1 /w/v3.log)" [ "$rc" -ne 0 ]
else
  wait "$cpid"; rc=$?
  mt_fail "the create of v3 ended (rc $rc) before mt-agent could be killed half way: $(tail -n 5 /w/v3.log)"
  tail -n 20 /w/agent.log
  kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null
fi
start_agent || die "mt-agent did not start after the kill during the vsnap create"
mt_check "the vsnap-create job cut short is failed at the next start, not run again" \
  sh -c "mtctl --config /w/agent.toml jobs --json | jq -e '.jobs[] | select(.id == \"v3-create\") | .state == \"failed\"' >/dev/null"
mt_check "a vsnap create killed half way is listed as interrupted" \
  sh -c "mtctl --config /w/agent.toml vsnap list --json | jq -e '.vsnaps[] | select(.name == \"v3\") | .state == \"interrupted\"' >/dev/null"
out=$(ctl vsnap remove v3 2>&1); rc=$?
mt_check "the interrupted vsnap is removed: $out" [ "$rc" -eq 0 ]
mt_check "its map is gone" sh -c "! dmsetup info '$map-vs-v3' >/dev/null 2>&1"
mt_check "the origin map is not left suspended" sh -c "dmsetup info '$map' | grep -q ACTIVE"
mt_check "the stream is running after the killed create (resume changes nothing)" ctl resume --stream s1
mt_check "v1 still equals the model at $t1" same "$d1" /tmp/m1.img

# Rollback writes through the origin: the vsnaps keep their points.
ctl points --stream s1 --json > /w/points.json
t3=$(jq -r '[.streams[0].points[] | select(.kind == "app")][-2].name' /w/points.json)
model "$t3" /tmp/m3.img || die "mtsend rebuild $t3"
mt_check "rollback of the stream to $t3" ctl rollback --stream s1 --to "$t3" --yes
mt_check "the target equals the model at $t3 after the rollback" same "/dev/mapper/$map" /tmp/m3.img
mt_check "v1 still equals the model at $t1 after the rollback" same "$d1" /tmp/m1.img
mt_check "v2 still equals the model at $t2 after the rollback" same "$d2" /tmp/m2.img

mt_check "remove v1" ctl vsnap remove v1
t=$(dmsetup table "$map")
mt_check "with v2 left the origin stays snapshot-origin" sh -c "echo '$t' | grep -q ' snapshot-origin '"
mt_check "v2 still equals the model at $t2" same "$d2" /tmp/m2.img
mt_check "remove v2" ctl vsnap remove v2
t=$(dmsetup table "$map")
mt_check "after the last remove the origin is linear again: $t" sh -c "echo '$t' | grep -q ' linear '"
mt_check "no vsnap is listed" sh -c "mtctl --config /w/agent.toml vsnap list --json | jq -e '.vsnaps | length == 0' >/dev/null"
mt_check "the COW files are gone" sh -c "! ls /w/retention/vsnap/*.cow >/dev/null 2>&1"
mt_check "no snapshot map is left" sh -c "! dmsetup ls | grep -q -- '-vs-'"
mt_check "the target still equals the model at $t3" same "/dev/mapper/$map" /tmp/m3.img
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null
finish
