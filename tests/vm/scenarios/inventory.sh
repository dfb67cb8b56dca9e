# shellcheck shell=sh disable=SC3043,SC3028,SC2012 # busybox ash: local, EPOCHREALTIME; sysfs names are plain
# inventory.sh — guest side of the disk-inventory VM test (issue 3: disk
# inventory by WWID, target safety, hot-add), driven by tests/vm/inventory-test.
#
# The guest has no udevd: ID_WWN/ID_SERIAL do not exist, so every identity that
# `mtctl disks` reports must come from sysfs. What is checked, each as one
# "PASS ..." or "FAIL ..." line ("info ..." lines are the record):
#   - the WWN disks are listed with wwid = identity = /sys/block/sdX/device/wwid
#     as the guest kernel reads it (and vendor/model as attached);
#   - the disk without a WWN (its wwid attribute exists, read() fails with
#     EINVAL) has no identity and the reason INV_NO_WWID_REASON;
#   - the ext4 disk mounted here is `mounted`, the disk under a dm-linear map
#     is `in-use` with that map as its holder (twice: under the map name the
#     issue uses, INV_HELD_MAP, and under a neutral name, INV_CTRL_MAP);
#   - none of these is a safe target, not even when named with --target, while
#     a free WWN disk named with --target is (safe_target is IsSafeTarget);
#   - `mtctl disks --watch --json`, started without --rescan, listens on the
#     kernel uevent netlink socket and does not wake while nothing happens; the
#     disk the host hot-adds after "INVENTORY-HOTADD-NOW <nonce>" shows up in
#     its output as "add" with its WWID within INV_HOT_LIMIT seconds.
#
# Hot-add latency, measured on the guest clock (one clock for both ends):
#   t_ready  guest time just before this scenario prints the hot-add marker; the
#            host issues device_add only after it has read that line, so
#            t_ready < device_add;
#   t_watch  time_unix_ms of the watch's "add" event (mtctl stamps it when it
#            prints it).
#   t_watch - t_ready is therefore an upper bound of device_add -> add line; it
#   is what the check compares with INV_HOT_LIMIT. It includes the host's own
#   reaction (seeing the marker, running vm-disk), so it over-estimates; the
#   driver also reports the host-clock figure (QEMU accepted device_add ->
#   the "watch: add" console line). For the record this scenario also stamps
#   every uevent (its own `uevent` listener) and reports block-add -> add line,
#   i.e. how fast mtctl reacts to the uevent.
#
# Environment (from inventory-test, nothing is hard-coded here):
#   INV_WWN_DISKS       WWIDs of the free VMware-like boot disks ("naa.… naa.…")
#   INV_FS_WWID         disk with ext4 made on the host; mounted at INV_MOUNT
#   INV_HELD_WWID INV_HELD_MAP   disk to put under a dm-linear map of that name
#   INV_CTRL_WWID INV_CTRL_MAP   the same with a neutral map name (control)
#   INV_NOWWID_COUNT    boot disks without a WWN
#   INV_NO_WWID_REASON  the reason the inventory must give for them
#   INV_VENDOR INV_MODEL         SCSI vendor and model of every disk
#   INV_HOT_WWID        WWID of the disk the host hot-adds
#   INV_HOT_LIMIT       seconds allowed from device_add to the watch's add line
#   INV_HOT_DEADLINE    seconds to wait for the hot-added disk at all
#   INV_NONCE           goes into the hot-add marker
# Exit 0 only when every check passed; the last line is
# "inventory: N checks, M failed".


for v in INV_WWN_DISKS INV_FS_WWID INV_MOUNT INV_HELD_WWID INV_HELD_MAP INV_CTRL_WWID INV_CTRL_MAP \
	INV_NOWWID_COUNT INV_NO_WWID_REASON INV_VENDOR INV_MODEL INV_HOT_WWID INV_HOT_LIMIT \
	INV_HOT_DEADLINE INV_NONCE; do
	eval "val=\${$v:-}"
	[ -n "$val" ] || { echo "FAIL inventory: $v is not set (run this through tests/vm/inventory-test)"; exit 2; }
done
for tool in mtctl dmsetup jq; do
	command -v $tool >/dev/null || { echo "FAIL inventory: $tool is not in the guest (--bin)"; exit 2; }
done

# ms_of EPOCHREALTIME-like "S.UUUUUU" -> milliseconds
ms_of() {
	local s us
	s=${1%[.,]*}
	us=${1#*[.,]}
	echo $((s * 1000 + (1$us - 1000000) / 1000))
}
# secs MS -> "S.mmm" (MS may be negative)
secs() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }

# ---------------------------------------------------------------- the disks
[ ! -e /run/udev ] && mt_info "no /run/udev: no udev database in this guest, identities can only come from sysfs"
for d in $(mt_sd_disks); do
	w=$(cat "/sys/block/$d/device/wwid" 2>&1) || w="(read fails: ${w##*: })"
	mt_info "boot disk $d: device/wwid=$w, $(mt_disk_bytes "$d") bytes, $(mt_attr "/sys/block/$d/device/vendor") $(mt_attr "/sys/block/$d/device/model")"
done

# find_disk VAR WWID: set VAR to the sd name, or fail the check
find_disk() {
	local n
	if n=$(mt_find_wwid "$2"); then
		eval "$1=\$n"
		return 0
	fi
	mt_fail "no sd disk has WWID $2 (sysfs)"
	eval "$1="
	return 1
}
find_disk fs_disk "$INV_FS_WWID"
find_disk held_disk "$INV_HELD_WWID"
find_disk ctrl_disk "$INV_CTRL_WWID"
nowwid_disks=""
for d in $(mt_sd_disks); do
	mt_wwid "$d" >/dev/null || nowwid_disks="$nowwid_disks $d"
done
nowwid_disks=${nowwid_disks# }
n=0
for d in $nowwid_disks; do n=$((n + 1)); done
st=1; [ "$n" -eq "$INV_NOWWID_COUNT" ] && st=0
mt_verdict $st "sysfs: $n disk(s) without WWID ($nowwid_disks), $INV_NOWWID_COUNT attached without wwn="
for d in $nowwid_disks; do
	f=/sys/block/$d/device/wwid
	if [ ! -e "$f" ]; then
		mt_fail "sysfs: $f is missing (expected: present, read fails with EINVAL)"
	elif err=$(cat "$f" 2>&1 >/dev/null); then
		mt_fail "sysfs: $f is readable: '$(cat "$f")' (expected: read fails with EINVAL)"
	else
		case "$err" in
			*"Invalid argument"*) mt_pass "sysfs: $d has a device/wwid attribute whose read fails with EINVAL ($err)" ;;
			*) mt_fail "sysfs: reading $f fails, but not with EINVAL: $err" ;;
		esac
	fi
done

# ---------------------------------------------------------------- mount and dm holders
if [ -n "$fs_disk" ]; then
	mkdir -p "$INV_MOUNT"
	if out=$(mount -t ext4 "/dev/$fs_disk" "$INV_MOUNT" 2>&1); then
		mt_info "mounted /dev/$fs_disk (ext4 made on the host image) at $INV_MOUNT: $(grep " $INV_MOUNT " /proc/self/mountinfo)"
	else
		mt_fail "set-up: mount -t ext4 /dev/$fs_disk $INV_MOUNT: $out"
	fi
fi
# make_linear DISK MAP: a dm-linear map over the whole disk. There is no udev:
# DM_DISABLE_UDEV=1 makes libdevmapper create /dev/mapper/MAP itself and not
# wait for udev (plain `dmsetup create` also returns, but leaves no node).
make_linear() {
	local sectors out
	sectors=$(cat "/sys/block/$1/size")
	if out=$(DM_DISABLE_UDEV=1 dmsetup create "$2" --table "0 $sectors linear /dev/$1 0" 2>&1); then
		mt_info "dmsetup create $2 --table '0 $sectors linear /dev/$1 0': $(DM_DISABLE_UDEV=1 dmsetup table "$2"); /dev/mapper/$2 $( [ -b "/dev/mapper/$2" ] && echo exists || echo missing); holders of $1: $(ls "/sys/block/$1/holders" | tr '\n' ' ')"
	else
		mt_fail "set-up: dmsetup create $2 over /dev/$1: $out"
	fi
}
[ -z "$held_disk" ] || make_linear "$held_disk" "$INV_HELD_MAP"
[ -z "$ctrl_disk" ] || make_linear "$ctrl_disk" "$INV_CTRL_MAP"

# ---------------------------------------------------------------- the watch
# Every uevent with the guest time at which the listener saw it.
cat >/tmp/inv-uevent-hook <<'EOF'
#!/bin/sh
echo "$EPOCHREALTIME $SEQNUM $ACTION $SUBSYSTEM ${DEVNAME:-$DEVPATH}" >>/tmp/inv-uevents.log
EOF
chmod +x /tmp/inv-uevent-hook
: >/tmp/inv-uevents.log
uevent /tmp/inv-uevent-hook </dev/null >/dev/null 2>&1 &
stamp_pid=$!

# mtctl writes into a FIFO; the reader appends each line to watch.jsonl and
# echoes a summary to the console at once (parameter expansion only, no fork:
# the host timestamps that console line for its latency figure). In the event
# JSON the first "name" and "identity" keys are the disk's (field order).
mkfifo /tmp/watch.fifo
: >/tmp/watch.jsonl
(
	while IFS= read -r l; do
		printf '%s\n' "$l" >>/tmp/watch.jsonl
		ev=${l#*\"event\":\"}; ev=${ev%%\"*}
		nm=${l#*\"name\":\"}; nm=${nm%%\"*}
		id=${l#*\"identity\":\"}; id=${id%%\"*}
		rl=${l#*\"role\":\"}; rl=${rl%%\"*}
		tm=${l##*\"time_unix_ms\":\"}; tm=${tm%%\"*}
		echo "watch: $ev $nm ${id:--} role=$rl time_unix_ms=$tm"
	done
) </tmp/watch.fifo &
reader_pid=$!
watch_cmd="mtctl disks --watch --json"
$watch_cmd >/tmp/watch.fifo 2>/tmp/watch.err &
watch_pid=$!
mt_info "started '$watch_cmd' (pid $watch_pid; no --rescan; nothing in this scenario writes /sys/class/scsi_host/*/scan)"
if mt_wait 60 grep -q "watching block devices" /tmp/watch.err; then
	mt_info "watch: $(cat /tmp/watch.err)"
else
	mt_fail "watch: no 'watching block devices' on stderr within 60 s: $(cat /tmp/watch.err)"
fi

# Listens on the kernel's uevent multicast group: a NETLINK_KOBJECT_UEVENT
# (protocol 15) socket with group 1 whose inode is one of the watch's fds.
inodes=$(ls -l "/proc/$watch_pid/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | tr '\n' ' ')
nl=""
for i in $inodes; do
	l=$(awk -v ino="$i" 'NR > 1 && $10 == ino && $2 == 15 && $4 == "00000001"' /proc/net/netlink)
	[ -z "$l" ] || nl=$l
done
if [ -n "$nl" ]; then
	mt_pass "watch listens on a kernel uevent netlink socket (protocol 15, group 1): /proc/net/netlink: $nl"
else
	mt_fail "watch has no NETLINK_KOBJECT_UEVENT socket on group 1 (socket inodes: ${inodes:-none})"
fi

# Does not poll: while no uevent arrives its context-switch count (all threads)
# must not move. A window with a uevent in it does not count; up to 3 tries.
ctxt() {
	cat /proc/"$watch_pid"/task/*/status 2>/dev/null |
		awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}
idle_done=0
for try in 1 2 3; do
	u0=$(wc -l </tmp/inv-uevents.log)
	c0=$(ctxt)
	sleep 2
	c1=$(ctxt)
	u1=$(wc -l </tmp/inv-uevents.log)
	[ "$u0" -eq "$u1" ] || { mt_info "idle window $try had $((u1 - u0)) uevent(s): not counted"; continue; }
	idle_done=1
	wchan=$(cat "/proc/$watch_pid/wchan" 2>/dev/null)
	if [ "$c0" -eq "$c1" ]; then
		mt_pass "watch does not poll: 0 wake-ups in 2 s without uevents (context switches $c0 -> $c1, sleeping in ${wchan:-?})"
	else
		mt_fail "watch woke $((c1 - c0)) time(s) in 2 s without any uevent (context switches $c0 -> $c1): it polls"
	fi
	break
done
[ "$idle_done" = 1 ] || mt_fail "watch: no uevent-free 2 s window in 3 tries; the no-polling check could not be made"

# ---------------------------------------------------------------- hot-add
t_ready_us=$EPOCHREALTIME
t_ready=$(ms_of "$t_ready_us")
echo "INVENTORY-HOTADD-NOW $INV_NONCE"
hot=""
if hot=$(mt_wait_wwid "$INV_HOT_WWID" "$INV_HOT_DEADLINE"); then
	t_sys=$(mt_now_ms)
	mt_info "hot-add: this scenario's wait found $INV_HOT_WWID as /sys/block/$hot at +$(secs $((t_sys - t_ready))) s (sysfs wwid $(cat "/sys/block/$hot/device/wwid"))"
else
	mt_fail "hot-add: no disk with $INV_HOT_WWID within ${INV_HOT_DEADLINE} s of the marker (sd disks: $(mt_sd_disks | tr '\n' ' '))"
fi
# the first "add" event with the hot-added WWID; status 1 while there is none
watch_add_line() { grep "\"event\":\"add\"" /tmp/watch.jsonl | grep -m 1 -F "\"wwid\":\"$INV_HOT_WWID\""; }
add_line=""
if [ -n "$hot" ]; then
	left=$((INV_HOT_DEADLINE - (t_sys - t_ready) / 1000))
	[ "$left" -ge 1 ] || left=1
	mt_wait "$left" watch_add_line >/dev/null
	add_line=$(watch_add_line)
fi
if [ -n "$add_line" ]; then
	a_name=$(printf '%s\n' "$add_line" | jq -r '.disk.name')
	a_wwid=$(printf '%s\n' "$add_line" | jq -r '.disk.wwid')
	a_id=$(printf '%s\n' "$add_line" | jq -r '.disk.identity')
	a_role=$(printf '%s\n' "$add_line" | jq -r '.disk.role')
	t_watch=$(printf '%s\n' "$add_line" | jq -r '.time_unix_ms')
	k_wwid=$(cat "/sys/block/$hot/device/wwid")
	st=1; [ "$a_name" = "$hot" ] && [ "$a_wwid" = "$k_wwid" ] && [ "$a_id" = "$k_wwid" ] && st=0
	mt_verdict $st "hot-add: the watch printed 'add' for $a_name with wwid $a_wwid, identity $a_id, role $a_role (kernel: $hot, $k_wwid)"
	lat=$((t_watch - t_ready))
	# the uevents of the hot-add, as this scenario's listener stamped them
	first=$(awk -v t="$t_ready_us" '$1 > t { print; exit }' /tmp/inv-uevents.log)
	blk=$(awk -v t="$t_ready_us" -v d="$hot" '$1 > t && $3 == "add" && $4 == "block" && $5 == d { print; exit }' /tmp/inv-uevents.log)
	[ -z "$first" ] || mt_info "hot-add: first uevent after the marker at +$(secs $(($(ms_of "${first%% *}") - t_ready))) s: ${first#* }"
	if [ -n "$blk" ]; then
		t_blk=$(ms_of "${blk%% *}")
		mt_info "hot-add: 'add block $hot' uevent at +$(secs $((t_blk - t_ready))) s; the watch's add line at +$(secs "$lat") s, $(secs $((t_watch - t_blk))) s after that uevent"
		st=1; [ "$t_watch" -ge "$t_blk" ] && st=0
		mt_verdict $st "hot-add: the add line came $(secs $((t_watch - t_blk))) s after the block uevent (uevent-driven: no --rescan, the watch slept until it)"
	else
		mt_fail "hot-add: no 'add block $hot' uevent in /tmp/inv-uevents.log"
	fi
	st=1; [ "$lat" -le $((INV_HOT_LIMIT * 1000)) ] && st=0
	mt_verdict $st "hot-add: add line $(secs "$lat") s after the marker (upper bound of device_add -> add line; limit ${INV_HOT_LIMIT} s)"
elif [ -n "$hot" ]; then
	mt_fail "hot-add: the watch printed no 'add' with wwid $INV_HOT_WWID within ${INV_HOT_DEADLINE} s of the marker; its output:"
	sed 's/^/    /' /tmp/watch.jsonl
	sed 's/^/    stderr: /' /tmp/watch.err
fi
echo "watch output so far ($(wc -l </tmp/watch.jsonl) lines):"
jq -c '{event, time_unix_ms, name: .disk.name, identity: .disk.identity, role: .disk.role, reason: .disk.reason}' /tmp/watch.jsonl 2>&1 | sed 's/^/    /'

# ---------------------------------------------------------------- mtctl disks --json
if ! mtctl disks --json >/tmp/inv.json 2>/tmp/inv.err || ! jq -e '.disks' /tmp/inv.json >/dev/null 2>&1; then
	mt_fail "mtctl disks --json failed: $(cat /tmp/inv.err)"
	mt_summary inventory
	exit 1
fi
echo "mtctl disks --json (summary; stderr: $(tr '\n' ' ' </tmp/inv.err)):"
jq -c '.disks[] | {name, identity, identity_source, wwid, vendor, model, role, reason, reasons, safe_target, can_be_target, target_blocker, holders: [.holders[] | .name + " " + .dm_name], mounts: [.mounts[] | .mount_point]}' /tmp/inv.json | sed 's/^/    /'

# load FILE NAME: set j_found (1 or 0) and j_<field> from the disk called NAME
# in FILE (one jq run per disk; jq's @sh quotes for eval). Lists are joined:
# j_holders "dm-0 kind=dm dm_name=x, ...", j_mounts "/mnt/a ext4, ...".
load() {
	local out
	j_found=0 j_wwid="" j_identity="" j_source="" j_vendor="" j_model="" j_role="" j_reason=""
	j_safe="" j_can="" j_blocker="" j_holders="" j_mounts=""
	out=$(jq -r --arg n "$2" '[.disks[] | select(.name == $n)] |
		if length == 1 then .[0] | @sh "j_found=1 j_wwid=\(.wwid) j_identity=\(.identity) j_source=\(.identity_source) j_vendor=\(.vendor) j_model=\(.model) j_role=\(.role) j_reason=\(.reason) j_safe=\(.safe_target) j_can=\(.can_be_target) j_blocker=\(.target_blocker) j_holders=\([.holders[] | "\(.name) kind=\(.kind) dm_name=\(.dm_name)"] | join(", ")) j_mounts=\([.mounts[] | "\(.mount_point) \(.fs_type)"] | join(", "))"
		else "j_found=0" end' "$1") || out="j_found=0"
	eval "$out"
}
contains() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }
not_safe() { [ "$j_can" = false ] && [ "$j_safe" = false ]; }
blocker() { echo "can_be_target=$j_can safe_target=$j_safe target_blocker='$j_blocker'"; }

# identity: exactly what the guest kernel reads, for every disk with a WWN
check_identity() {
	local d="$1" raw
	raw=$(cat "/sys/block/$d/device/wwid")
	load /tmp/inv.json "$d"
	if [ "$j_found" != 1 ]; then
		mt_fail "identity: mtctl disks --json does not list $d ($raw)"
		return
	fi
	st=1; [ "$j_wwid" = "$raw" ] && [ "$j_identity" = "$raw" ] && st=0
	mt_verdict $st "identity: $d wwid '$j_wwid' and identity '$j_identity' = /sys/block/$d/device/wwid '$raw'"
	st=1; [ "$j_source" = "sysfs wwid" ] && [ "$j_vendor" = "$INV_VENDOR" ] && [ "$j_model" = "$INV_MODEL" ] && st=0
	mt_verdict $st "identity: $d from sysfs (identity_source '$j_source'), vendor '$j_vendor', model '$j_model'"
}
for w in $INV_WWN_DISKS; do
	if d=$(mt_find_wwid "$w"); then check_identity "$d"; else mt_fail "identity: no sd disk has WWID $w (sysfs)"; fi
done
for d in $fs_disk $held_disk $ctrl_disk $hot; do check_identity "$d"; done

# free WWN disks: can be targets, are not (nobody named them)
for w in $INV_WWN_DISKS; do
	d=$(mt_find_wwid "$w") || continue
	load /tmp/inv.json "$d"
	st=1; [ "$j_role" = free ] && [ "$j_can" = true ] && [ "$j_safe" = false ] && st=0
	mt_verdict $st "free: $d ($w): role $j_role, can_be_target=$j_can safe_target=$j_safe ('$j_reason')"
done

# no WWID: no identity, the reason, never a target
for d in $nowwid_disks; do
	load /tmp/inv.json "$d"
	if [ "$j_found" != 1 ]; then
		mt_fail "no WWID: mtctl disks --json does not list $d"
		continue
	fi
	st=1; [ -z "$j_wwid" ] && [ -z "$j_identity" ] && contains "$j_reason" "$INV_NO_WWID_REASON" && st=0
	mt_verdict $st "no WWID: $d: wwid='$j_wwid' identity='$j_identity' role $j_role, reason '$j_reason'"
	st=1; not_safe && contains "$j_blocker" "$INV_NO_WWID_REASON" && st=0
	mt_verdict $st "no WWID: $d is not a safe target: $(blocker)"
done

# mounted
if [ -n "$fs_disk" ]; then
	load /tmp/inv.json "$fs_disk"
	st=1; [ "$j_role" = mounted ] && contains ", $j_mounts," ", $INV_MOUNT ext4," && st=0
	mt_verdict $st "mounted: $fs_disk: role $j_role, reason '$j_reason', mounts [$j_mounts]"
	st=1; not_safe && contains "$j_blocker" "mounted" && st=0
	mt_verdict $st "mounted: $fs_disk is not a safe target: $(blocker)"
fi

# in use by a dm-linear map: role, not a target, and the map named as its
# holder. Two maps of the same kind: INV_HELD_MAP is the name the issue uses,
# INV_CTRL_MAP a neutral one; should only one of them be seen as a holder, the
# name is what the inventory treats differently.
check_held() {
	local d="$1" map="$2" dm
	[ -n "$d" ] || return
	dm=$(ls "/sys/block/$d/holders" | head -n 1)
	mt_info "sysfs: /sys/block/$d/holders: $dm, dm/name '$(cat "/sys/block/$dm/dm/name")', dm/uuid '$(cat "/sys/block/$dm/dm/uuid")'"
	load /tmp/inv.json "$d"
	st=1; [ "$j_role" = in-use ] && st=0
	mt_verdict $st "in-use: $d (under dm map $map = $dm): role $j_role, reason '$j_reason'"
	st=1; not_safe && contains "$j_blocker" "in-use" && st=0
	mt_verdict $st "in-use: $d is not a safe target: $(blocker)"
	st=1; [ "$j_holders" = "$dm kind=dm dm_name=$map" ] && [ "$j_reason" = "in use by $dm ($map)" ] && st=0
	mt_verdict $st "in-use: $d names its holder: holders [$j_holders], reason '$j_reason' (expected [$dm kind=dm dm_name=$map], 'in use by $dm ($map)')"
}
check_held "$held_disk" "$INV_HELD_MAP"
check_held "$ctrl_disk" "$INV_CTRL_MAP"

# the hot-added disk is in a fresh inventory too
if [ -n "$hot" ]; then
	load /tmp/inv.json "$hot"
	st=1; [ "$j_identity" = "$INV_HOT_WWID" ] && st=0
	mt_verdict $st "hot-add: mtctl disks --json lists $hot as '$j_identity', role $j_role"
fi

# ---------------------------------------------------------------- IsSafeTarget
# Name every WWN disk a target, as the catalog would: only the unused ones may
# become targets; mounted and in-use disks keep their role and stay unsafe
# (safe_target is IsSafeTarget(disk).ok()).
targets=""
for w in $INV_WWN_DISKS $INV_FS_WWID $INV_HELD_WWID $INV_CTRL_WWID; do targets="$targets --target $w"; done
# shellcheck disable=SC2086 # one word per option
if mtctl disks --json $targets >/tmp/inv-t.json 2>/tmp/inv-t.err; then
	mt_info "mtctl disks --json$targets"
	for w in $INV_WWN_DISKS $INV_FS_WWID $INV_HELD_WWID $INV_CTRL_WWID; do
		d=$(mt_find_wwid "$w") || continue
		load /tmp/inv.json "$d"
		case " $INV_WWN_DISKS " in
			*" $w "*) want_role=target want_safe=true ;;
			*) want_role=$j_role want_safe=false ;;
		esac
		load /tmp/inv-t.json "$d"
		st=1; [ "$j_role" = "$want_role" ] && [ "$j_safe" = "$want_safe" ] && st=0
		mt_verdict $st "named target: $d ($w): role $j_role, safe_target=$j_safe, reason '$j_reason' (expected role $want_role, safe_target=$want_safe)"
	done
else
	mt_fail "mtctl disks --json$targets failed: $(cat /tmp/inv-t.err)"
fi

# ---------------------------------------------------------------- the table, for the record
echo "mtctl disks:"
if mtctl disks >/tmp/inv.txt 2>&1; then
	sed 's/^/    /' /tmp/inv.txt
	n=$(($(wc -l </tmp/inv.txt) - 1))
	m=$(jq '.disks | length' /tmp/inv.json)
	st=1; [ "$n" -eq "$m" ] && st=0
	mt_verdict $st "mtctl disks (table) ran: $n rows, $m disks in the JSON"
else
	sed 's/^/    /' /tmp/inv.txt
	mt_fail "mtctl disks (table) failed"
fi

# ---------------------------------------------------------------- stop the watch
kill -TERM "$watch_pid" 2>/dev/null
wait "$watch_pid"
rc=$?
st=1; [ "$rc" -eq 0 ] && st=0
mt_verdict $st "watch: exits 0 on SIGTERM (status $rc)"
wait "$reader_pid" 2>/dev/null
kill "$stamp_pid" 2>/dev/null

mt_summary inventory
