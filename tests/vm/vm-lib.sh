# shellcheck shell=bash
# vm-lib.sh — shared by run-vm and vm-disk (sourced, bash). Defines the one disk
# shape of the VM tier so that boot disks and hot-added disks look the same.
#
# Disk spec:  NAME:SIZE[:wwn=0xHEX][:fs=ext2|ext3|ext4][:paths=N]
#   NAME  QEMU id of the drive and of the device: a letter, then letters, digits,
#         '-' or '_'. The raw image is <disk dir>/NAME.img (sparse, created here).
#   SIZE  anything `truncate -s` accepts (64M, 1G, 1048576).
#   wwn=  64-bit NAA WWN; the guest then reads /sys/block/sdX/device/wwid as
#         naa.<16 lowercase hex digits>. Without it the disk has no WWID (like a
#         VMware disk when disk.EnableUUID is not TRUE).
#   paths= (boot disks only, 1-4, default 1) the same image attached as N
#         scsi-hd devices with the same WWN (drives NAME, NAME-p2, ...; QEMU's
#         share-rw=on): N paths to one disk, for multipath.
#   fs=   make that file system on the whole image on the host before the guest
#         sees it (mkfs.TYPE -F -q; needs e2fsprogs), e.g. a disk to mount.
# Every disk is a scsi-hd on the virtio-scsi bus scsi0.0 with vendor=VMware and
# product "Virtual disk".

VM_SCSI_BUS=scsi0.0
VM_DISK_VENDOR=VMware
VM_DISK_PRODUCT="Virtual disk"

# vm_parse_disk SPEC: sets VM_DISK_NAME, VM_DISK_SIZE, VM_DISK_WWN and VM_DISK_FS
# (both may be empty) and VM_DISK_PATHS (1 unless paths= says otherwise).
# Returns 1 with a one-line reason on stderr when SPEC is malformed.
vm_parse_disk() {
  local spec=$1 rest opt
  VM_DISK_NAME=${spec%%:*}
  rest=${spec#*:}
  if [ "$rest" = "$spec" ] || [ -z "$rest" ]; then
    echo "disk spec '$spec': expected NAME:SIZE[:wwn=0x...][:fs=ext4]" >&2; return 1
  fi
  VM_DISK_SIZE=${rest%%:*}
  VM_DISK_WWN="" VM_DISK_FS="" VM_DISK_PATHS=1
  if [ "$VM_DISK_SIZE" != "$rest" ]; then
    local IFS=:
    for opt in ${rest#*:}; do
      case "$opt" in
        wwn=0x*|wwn=0X*)
          VM_DISK_WWN=0x${opt#wwn=0?}
          [[ ${VM_DISK_WWN#0x} =~ ^[0-9a-fA-F]{1,16}$ ]] ||
            { echo "disk spec '$spec': wwn must be 0x followed by 1-16 hex digits" >&2; return 1; } ;;
        fs=ext2|fs=ext3|fs=ext4) VM_DISK_FS=${opt#fs=} ;;
        fs=*) echo "disk spec '$spec': fs must be ext2, ext3 or ext4" >&2; return 1 ;;
        paths=[1-4]) VM_DISK_PATHS=${opt#paths=} ;;
        paths=*) echo "disk spec '$spec': paths must be 1, 2, 3 or 4" >&2; return 1 ;;
        *) echo "disk spec '$spec': unknown option '$opt' (known: wwn=0x..., fs=ext4, paths=N)" >&2; return 1 ;;
      esac
    done
  fi
  [[ $VM_DISK_NAME =~ ^[A-Za-z][A-Za-z0-9_-]*$ ]] ||
    { echo "disk spec '$spec': NAME must be a letter followed by letters, digits, - or _" >&2; return 1; }
  [[ $VM_DISK_SIZE =~ ^[0-9]+[KMGT]?$ ]] ||
    { echo "disk spec '$spec': SIZE must be a number with an optional K, M, G or T suffix" >&2; return 1; }
}

# vm_create_image PATH SIZE [FS]: create a sparse raw image (fails if PATH
# exists); with FS, make that file system on it (mkfs.FS -F -q).
vm_create_image() {
  [ ! -e "$1" ] || { echo "image $1 already exists" >&2; return 1; }
  truncate -s "$2" "$1" || return 1
  [ -z "${3:-}" ] || mkfs."$3" -F -q "$1" >&2 || { echo "mkfs.$3 $1 failed" >&2; return 1; }
}

# vm_qemu_escape STR: escape commas for a QEMU option value.
vm_qemu_escape() { printf '%s' "${1//,/,,}"; }

# vm_drive_opts IMAGE NAME: the -drive / drive_add option string.
vm_drive_opts() { printf 'file=%s,if=none,format=raw,id=%s' "$(vm_qemu_escape "$1")" "$2"; }

# vm_device_opts NAME WWN [SHARED]: the -device / device_add option string (WWN
# may be empty; SHARED=1 adds share-rw=on, for a disk with several paths).
vm_device_opts() {
  printf 'scsi-hd,drive=%s,id=%s,bus=%s,vendor=%s,product=%s%s%s' \
    "$1" "$1" "$VM_SCSI_BUS" "$VM_DISK_VENDOR" "$VM_DISK_PRODUCT" "${2:+,wwn=$2}" \
    "$([ "${3:-0}" = 1 ] && echo ,share-rw=on)"
}
