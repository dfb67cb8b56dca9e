# smoke.sh — guest side of the VM tier's smoke test (driven by tests/vm/smoke-test).
#
# Proves what the tier exists for: SCSI disks with NAA WWIDs read from sysfs, a
# disk without a WWID, the VMware vendor/model, device-mapper present, a host
# binary running with its copied libraries, ext4 on a loop device, a file copied
# with --file, and a disk hot-added by the host through the QEMU monitor.
#
# Every expectation comes from the driver through --env; nothing is hard-coded:
#   SMOKE_WWN_DISKS        "WWID:BYTES ..."  boot disks that have a WWN
#   SMOKE_PLAIN_DISKS      "BYTES ..."       boot disks without a WWN
#   SMOKE_HOTADD           "WWID:BYTES"      disk the host hot-adds after MT-VM-READY
#   SMOKE_HOTADD_DEADLINE  seconds to wait for it
#   SMOKE_VENDOR, SMOKE_MODEL                expected SCSI vendor and model
#   SMOKE_LSBLK            guest path of the host's lsblk (copied with --bin)
#   SMOKE_FILE, SMOKE_FILE_SHA256            a --file copy and its host checksum
#
# Output: "PASS ..." or "FAIL ..." per check, "info ..." for what was found, and
# the last line "smoke: N checks, M failed". Exit 0 only when nothing failed.

t_start=$(mt_now_ms)

for v in SMOKE_WWN_DISKS SMOKE_PLAIN_DISKS SMOKE_HOTADD SMOKE_HOTADD_DEADLINE SMOKE_VENDOR \
	SMOKE_MODEL SMOKE_LSBLK SMOKE_FILE SMOKE_FILE_SHA256; do
	eval "val=\${$v:-}"
	[ -n "$val" ] || { echo "FAIL smoke: $v is not set (run this through tests/vm/smoke-test)"; exit 2; }
done

# ---- 1. hot-add: wait first, so that the time measured is the hot-add latency
hot_wwid=${SMOKE_HOTADD%%:*}
hot_bytes=${SMOKE_HOTADD#*:}
if d=$(mt_find_wwid "$hot_wwid"); then
	mt_info "hot-add: $hot_wwid was already present as $d when the scenario started"
fi
if hot=$(mt_wait_wwid "$hot_wwid" "$SMOKE_HOTADD_DEADLINE"); then
	mt_pass "hot-add: $hot_wwid appeared as $hot $(mt_elapsed "$t_start") s after the scenario started (deadline ${SMOKE_HOTADD_DEADLINE} s)"
else
	mt_fail "hot-add: $hot_wwid did not appear within ${SMOKE_HOTADD_DEADLINE} s (sd disks: $(mt_sd_disks | tr '\n' ' '))"
fi

# ---- 2. disks with a WWN: identity from sysfs, vendor, model, size
# check_wwn_disk WWID BYTES
check_wwn_disk() {
	local wwid="$1" bytes="$2" d raw vendor model size
	if ! d=$(mt_find_wwid "$wwid"); then
		mt_fail "disk $wwid: no sd disk has this WWID"
		return
	fi
	raw=$(cat "/sys/block/$d/device/wwid")
	vendor=$(mt_attr "/sys/block/$d/device/vendor")
	model=$(mt_attr "/sys/block/$d/device/model")
	size=$(mt_disk_bytes "$d")
	mt_info "disk $d: device/wwid='$raw' vendor='$vendor' model='$model' bytes=$size"
	if [ "$raw" = "$wwid" ]; then mt_pass "disk $d: /sys/block/$d/device/wwid reads $wwid"; else mt_fail "disk $d: wwid reads '$raw', expected '$wwid'"; fi
	if [ "$vendor" = "$SMOKE_VENDOR" ]; then mt_pass "disk $d: vendor $vendor"; else mt_fail "disk $d: vendor '$vendor', expected '$SMOKE_VENDOR'"; fi
	if [ "$model" = "$SMOKE_MODEL" ]; then mt_pass "disk $d: model $model"; else mt_fail "disk $d: model '$model', expected '$SMOKE_MODEL'"; fi
	if [ "$size" = "$bytes" ]; then mt_pass "disk $d: $size bytes"; else mt_fail "disk $d: $size bytes, expected $bytes"; fi
}
expected_wwids=" $hot_wwid "
for spec in $SMOKE_WWN_DISKS; do
	check_wwn_disk "${spec%%:*}" "${spec#*:}"
	expected_wwids="$expected_wwids${spec%%:*} "
done
[ -z "$hot" ] || check_wwn_disk "$hot_wwid" "$hot_bytes"

# ---- 3. disks without a WWN: what exactly the wwid attribute does
plain_sizes=""
for d in $(mt_sd_disks); do
	if w=$(mt_wwid "$d"); then
		case "$expected_wwids" in
			*" $w "*) ;;
			*) mt_fail "disk $d: unexpected WWID $w" ;;
		esac
		continue
	fi
	f=/sys/block/$d/device/wwid
	if [ ! -e "$f" ]; then
		how="the wwid attribute is missing"
	elif err=$(cat "$f" 2>&1 >/dev/null); then
		how="the wwid attribute is empty"
	else
		how="the wwid attribute exists but reading it fails: ${err##*: }"
	fi
	vendor=$(mt_attr "/sys/block/$d/device/vendor")
	size=$(mt_disk_bytes "$d")
	mt_info "disk $d: no WWID ($how); vendor='$vendor' bytes=$size"
	mt_pass "disk $d without WWN reports no WWID: $how"
	if [ "$vendor" = "$SMOKE_VENDOR" ]; then mt_pass "disk $d: vendor $vendor"; else mt_fail "disk $d: vendor '$vendor', expected '$SMOKE_VENDOR'"; fi
	plain_sizes="$plain_sizes $size"
done
# shellcheck disable=SC2086 # unquoted on purpose: one size per word
got=$(echo $plain_sizes | tr ' ' '\n' | sort -n | tr '\n' ' ')
# shellcheck disable=SC2086
want=$(echo $SMOKE_PLAIN_DISKS | tr ' ' '\n' | sort -n | tr '\n' ' ')
if [ "$got" = "$want" ]; then
	mt_pass "disks without WWID: sizes [ $got] as attached"
else
	mt_fail "disks without WWID: sizes [ $got], expected [ $want]"
fi

# ---- 4. device-mapper (no dmsetup in busybox: the control node and /proc/misc suffice)
if [ -c /dev/mapper/control ]; then mt_pass "/dev/mapper/control is a character device"; else mt_fail "/dev/mapper/control missing"; fi
if misc=$(grep ' device-mapper$' /proc/misc); then
	mt_pass "/proc/misc lists device-mapper (minor ${misc% *})"
else
	mt_fail "/proc/misc does not list device-mapper"
fi
for m in dm_mod dm_snapshot dm_flakey dm_log_writes dm_multipath; do
	if grep -q "^$m " /proc/modules; then mt_pass "module $m loaded"; else mt_fail "module $m not loaded"; fi
done

# ---- 5. a host binary with its ldd libraries
if out=$("$SMOKE_LSBLK" -d -n -o NAME,SIZE,VENDOR,MODEL,WWN 2>&1); then
	echo "$out" | while IFS= read -r l; do mt_info "lsblk: $l"; done
	missing=""
	for d in $(mt_sd_disks); do
		echo "$out" | grep -q "^$d " || missing="$missing $d"
	done
	if [ -z "$missing" ]; then mt_pass "host $SMOKE_LSBLK runs in the guest and lists every sd disk"; else mt_fail "lsblk output lacks:$missing"; fi
else
	mt_fail "host $SMOKE_LSBLK failed in the guest: $out"
fi

# ---- 6. ext4 on a loop device (modules ext4 and loop)
img=/tmp/ext.img
dd if=/dev/zero of=$img bs=1M count=8 2>/dev/null
if losetup /dev/loop0 $img && mke2fs -L smoke /dev/loop0 >/dev/null 2>&1 &&
	mkdir -p /mnt/ext && mount -t ext4 /dev/loop0 /mnt/ext &&
	echo smoke >/mnt/ext/f && [ "$(cat /mnt/ext/f)" = smoke ] &&
	umount /mnt/ext && losetup -d /dev/loop0; then
	mt_pass "ext4 mount of a file system on /dev/loop0"
else
	mt_fail "ext4 on /dev/loop0 failed"
fi

# ---- 7. a file copied with --file
if sum=$(sha256sum "$SMOKE_FILE" 2>&1) && [ "${sum%% *}" = "$SMOKE_FILE_SHA256" ]; then
	mt_pass "--file copy $SMOKE_FILE matches the host's sha256"
else
	mt_fail "--file copy $SMOKE_FILE: sha256 '${sum%% *}', expected $SMOKE_FILE_SHA256"
fi

mt_summary smoke
