#!/usr/bin/env bash
# Builds the Debian 12 box for Vagrant's libvirt provider locally, for
# machines that cannot download boxes (no Vagrant Cloud), and adds it as
# `debian/bookworm64` (the Vagrantfile's debian12 machine). Idempotent: the
# box file is cached under $EDGEUP_BOX_CACHE (default
# /var/cache/edgeup-test/vagrant-box), keyed by this script's content, and
# added only when `vagrant box list` does not show it.
#
#   sudo vagrant/build-box.sh            # about 2 minutes the first time
#
# Needs root, debootstrap, sfdisk, partx, losetup, mkfs.ext4, e2fsck,
# qemu-img and vagrant (whose package ships the insecure key the box
# trusts, as boxes from Vagrant Cloud do). The image: one MBR partition
# (ext4), debootstrap'd bookworm with linux-image-amd64, grub-pc,
# openssh-server, sudo, ifupdown + isc-dhcp-client (DHCP on eth0), a
# serial console, user `vagrant` with passwordless sudo.
set -euo pipefail

NAME=debian/bookworm64
SUITE=bookworm
MIRROR=${EDGEUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SIZE_GB=8
here=$(cd "$(dirname "$0")" && pwd)
key=$(sha256sum "$0" | cut -c1-16)
cache=${EDGEUP_BOX_CACHE:-/var/cache/edgeup-test/vagrant-box}
box="$cache/debian-bookworm64-$key.box"

[ "$(id -u)" = 0 ] || { echo "build-box.sh: run as root" >&2; exit 5; }
for tool in debootstrap sfdisk partx losetup mkfs.ext4 e2fsck qemu-img vagrant; do
  command -v "$tool" >/dev/null || { echo "build-box.sh: $tool is missing" >&2; exit 5; }
done
insecure_pub=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1)
[ -n "$insecure_pub" ] || { echo "build-box.sh: vagrant's insecure key not found" >&2; exit 5; }

built=0
if [ ! -f "$box" ]; then
  built=1
  mkdir -p "$cache"
  rm -f "$cache"/debian-bookworm64-*.box
  work=$(mktemp -d "$cache/build.XXXXXX")
  # Everything below in a private mount namespace: no mount of the image
  # outlives it, so nothing can hold back its last writes.
  unshare --mount --propagation private bash -euo pipefail -s "$work" "$SUITE" "$MIRROR" \
    "$SIZE_GB" "$insecure_pub" <<'BUILD'
work=$1 suite=$2 mirror=$3 size_gb=$4 insecure_pub=$5
disk="$work/disk.raw"
root="$work/root"
truncate -s "${size_gb}G" "$disk"
echo 'type=83, bootable' | sfdisk -q "$disk"
loop=$(losetup -f --show "$disk")
part=${loop}p1
# This kernel does not make the partition device for `losetup -P`: partx does.
partx -a "$loop"
cleanup() {
  umount -R "$root" 2>/dev/null || true
  partx -d "$loop" 2>/dev/null || true
  losetup -d "$loop" 2>/dev/null || true
}
trap cleanup EXIT
mkfs.ext4 -q -L root "$part"
uuid=$(blkid -s UUID -o value "$part")
mkdir -p "$root"
mount "$part" "$root"
debootstrap --variant=minbase \
  --include=systemd-sysv,dbus,linux-image-amd64,grub-pc,openssh-server,sudo,ifupdown,isc-dhcp-client,iproute2,ca-certificates,curl,netbase \
  "$suite" "$root" "$mirror" >/dev/null
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" > "$root/etc/fstab"
echo vagrant > "$root/etc/hostname"
printf 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n' \
  > "$root/etc/network/interfaces"
cat > "$root/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="net.ifnames=0 console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB
for fs in dev proc sys; do mount --rbind "/$fs" "$root/$fs"; done
chroot "$root" useradd -m -s /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$insecure_pub" "$root/home/vagrant/.ssh/authorized_keys"
# Reverse DNS lookups would stall every login on a network without DNS.
echo 'UseDNS no' > "$root/etc/ssh/sshd_config.d/vagrant.conf"
chroot "$root" grub-install --target=i386-pc "$loop" >/dev/null 2>&1
chroot "$root" update-grub >/dev/null 2>&1
# Without udev in the chroot, grub-mkconfig names the loop partition.
sed -i "s#root=$part#root=UUID=$uuid#g" "$root/boot/grub/grub.cfg"
grep -q "root=UUID=$uuid" "$root/boot/grub/grub.cfg"
chroot "$root" apt-get clean
umount -R "$root"
e2fsck -fn "$part" >/dev/null
BUILD
  qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
  printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$SIZE_GB" > "$work/metadata.json"
  printf 'Vagrant.configure("2") do |config|\nend\n' > "$work/Vagrantfile"
  tar -C "$work" -cf "$box.tmp" metadata.json Vagrantfile box.img
  mv "$box.tmp" "$box"
  rm -rf "$work"
fi

if [ "$built" = 1 ] || ! vagrant box list 2>/dev/null | grep -q "^$NAME .*libvirt"; then
  vagrant box add --force --name "$NAME" "$box" >/dev/null
fi
echo "$NAME (libvirt) from $box"
