#!/bin/sh
# packaging/build.sh deb|rpm|all
#
# Builds edgeup's packages from the static (musl) release binary of this
# checkout, with Debian's own tools: dpkg-deb for the .deb, rpmbuild for the
# .rpm. Output: dist/edgeup_VERSION-1_amd64.deb, dist/edgeup-VERSION-1.x86_64.rpm
# (VERSION from Cargo.toml). Both carry the same files: /usr/bin/edgeup,
# man pages generated from the clap definitions, bash/zsh/fish completions,
# README and licenses under /usr/share/doc/edgeup; no systemd unit (apply
# owns the units); haproxy, certbot and openssl only recommended; a
# prerm/%preun that only warns when the renewal unit runs /usr/bin/edgeup.
# Set EDGEUP_GIT_COMMIT to build from a tree without .git.
set -eu
cd "$(dirname "$0")/.."
umask 022

what=${1:-all}
case $what in
  deb|rpm|all) ;;
  *) echo "usage: packaging/build.sh deb|rpm|all" >&2; exit 2 ;;
esac

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "packaging/build.sh: $1 is missing: $2" >&2
    exit 1
  }
}
need cargo "install Rust (rustup)"
need x86_64-linux-musl-gcc "apt-get install musl-tools"
need gzip "apt-get install gzip"
case $what in deb|all) need dpkg-deb "apt-get install dpkg" ;; esac
case $what in rpm|all) need rpmbuild "apt-get install rpm" ;; esac

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "packaging/build.sh: no version in Cargo.toml" >&2; exit 1; }
release=1
target=x86_64-unknown-linux-musl

cargo build --release --locked --target "$target"
bin=target/$target/release/edgeup
"$bin" --version >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p dist

# The file tree both packages carry. $1: the root, $2: zsh's completion
# directory (Debian: vendor-completions; Fedora/EL: site-functions).
stage() {
  root=$1
  install -D -m 0755 "$bin" "$root/usr/bin/edgeup"
  mkdir -p "$root/usr/share/man/man1"
  "$bin" man --dir "$root/usr/share/man/man1" >/dev/null
  gzip -9n "$root"/usr/share/man/man1/*.1
  install -d "$root/usr/share/bash-completion/completions" "$root$2" \
    "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/doc/edgeup"
  "$bin" completions bash >"$root/usr/share/bash-completion/completions/edgeup"
  "$bin" completions zsh >"$root$2/_edgeup"
  "$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/edgeup.fish"
  install -m 0644 README.md LICENSE-MIT LICENSE-APACHE "$root/usr/share/doc/edgeup/"
  find "$root" -type f ! -path "$root/usr/bin/edgeup" -exec chmod 0644 {} +
  find "$root" -type d -exec chmod 0755 {} +
}

# Warns only: never fails, never touches a unit. $1: the argument that
# means "the package is going away" (deb: remove, rpm: 0).
warning() {
  cat <<SH
unit=/etc/systemd/system/edgeup-renew.service
if [ "\$1" = $1 ] && grep -qs '^ExecStart=/usr/bin/edgeup ' "\$unit"; then
  echo "edgeup: \$unit runs /usr/bin/edgeup: renewals stop when the package is gone; run \\\`edgeup uninstall\\\` first or reinstall" >&2
fi
SH
}

summary="One idempotent command that puts a web app behind HAProxy with HTTPS"
description="edgeup converges a Debian or RHEL host to HAProxy with HTTPS: it
installs haproxy, certbot and openssl, writes a placeholder certificate,
renders and validates haproxy.cfg, gets Let's Encrypt certificates and
renews them (edgeup apply, plan, renew, status, fleet). The package enables
no systemd unit: edgeup apply writes and enables the ones it needs."

build_deb() {
  root=$work/deb
  stage "$root" /usr/share/zsh/vendor-completions
  cat >"$root/usr/share/doc/edgeup/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edgeup

Files: *
Copyright: the edgeup developers
License: MIT or Apache-2.0
 The MIT license is in /usr/share/doc/edgeup/LICENSE-MIT; the Apache
 License 2.0 in /usr/share/doc/edgeup/LICENSE-APACHE and, on Debian
 systems, in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
  chmod 0644 "$root/usr/share/doc/edgeup/copyright"
  mkdir -p "$root/DEBIAN"
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<CONTROL
Package: edgeup
Version: $version-$release
Architecture: amd64
Maintainer: the edgeup developers <edgeup@invalid>
Installed-Size: $size
Section: admin
Priority: optional
Recommends: haproxy, certbot, openssl
Description: $summary
$(printf '%s\n' "$description" | sed 's/^/ /')
CONTROL
  { echo '#!/bin/sh'; echo '# edgeup prerm: warns only (never fails, never touches a unit).'; warning remove; echo 'exit 0'; } \
    >"$root/DEBIAN/prerm"
  chmod 0755 "$root/DEBIAN" "$root/DEBIAN/prerm"
  (cd "$root" && find usr -type f -exec md5sum {} + | sort -k 2) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  out=dist/edgeup_${version}-${release}_amd64.deb
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
  echo "$out"
}

build_rpm() {
  root=$work/rpm-root
  stage "$root" /usr/share/zsh/site-functions
  top=$work/rpmbuild
  mkdir -p "$top/SPECS" "$top/RPMS"
  spec=$top/SPECS/edgeup.spec
  {
    cat <<SPEC
Name: edgeup
Version: $version
Release: $release
Summary: $summary
License: MIT OR Apache-2.0
BuildArch: x86_64
# A static binary: nothing to require, nothing to provide.
AutoReqProv: no
Recommends: haproxy
Recommends: certbot
Recommends: openssl
%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none

%description
$description

%install
cp -a "$root/." "%{buildroot}/"

%preun
# edgeup %%preun: warns only (never fails, never touches a unit).
SPEC
    warning 0
    echo 'exit 0'
    echo
    echo '%files'
    echo '%dir /usr/share/doc/edgeup'
    (cd "$root" && find usr -type f | sort) | while read -r f; do
      case $f in
        usr/bin/edgeup) echo "%attr(0755,root,root) /$f" ;;
        usr/share/doc/edgeup/LICENSE-*) echo "%license %attr(0644,root,root) /$f" ;;
        usr/share/doc/edgeup/*) echo "%doc %attr(0644,root,root) /$f" ;;
        *) echo "%attr(0644,root,root) /$f" ;;
      esac
    done
  } >"$spec"
  rpmbuild --quiet -bb --define "_topdir $top" --define "_rpmdir $top/RPMS" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_dbpath $work/rpmdb" "$spec" >/dev/null
  out=dist/edgeup-${version}-${release}.x86_64.rpm
  mv "$top/RPMS/edgeup-${version}-${release}.x86_64.rpm" "$out"
  echo "$out"
}

case $what in
  deb) build_deb ;;
  rpm) build_rpm ;;
  all) build_deb; build_rpm ;;
esac
