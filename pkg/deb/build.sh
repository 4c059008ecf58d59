#!/usr/bin/env bash
# npm run deb: builds berkeleyd_<version>_<arch>.deb with dpkg-deb, from a
# checkout after `npm ci` (which builds dist/), with no network.
#
#   BERKELEYD_DEB_VERSION_SUFFIX  appended to package.json's version (e.g. +1 for a rebuild;
#                                 the changelog then gets an entry for it)
#   BERKELEYD_DEB_ARCH            Debian architecture (default: this machine's)
#   BERKELEYD_DEB_OUTDIR          where the .deb goes (default: the checkout)
#
# Layout: the code and its production dependencies (koffi with the one
# prebuilt binary of the architecture) in /usr/lib/berkeleyd, linked as
# /usr/bin/berkeleyd; the unit in /lib/systemd/system; /etc/default/berkeleyd
# (a conffile); man pages and bash completion generated from bin/ by scripts/.
set -euo pipefail
umask 022
cd "$(dirname "$0")/../.."
HERE=pkg/deb
die() { echo "npm run deb: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog gzip; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev)"
done
[ -d node_modules/koffi ] || die "no node_modules: run npm ci first"
# dist/ as npm ci's prepare built it, unless a source is newer (an edit since): then build again.
if [ ! -f dist/scripts/docs-gen.js ] || [ -n "$(find bin lib scripts package.json tsconfig.json -newer dist/scripts/docs-gen.js -print -quit)" ]; then
  npm run build >/dev/null
fi

UPSTREAM=$(node -p 'require("./package.json").version')
SUFFIX=${BERKELEYD_DEB_VERSION_SUFFIX:-}
VERSION=$UPSTREAM$SUFFIX
ARCH=${BERKELEYD_DEB_ARCH:-$(dpkg --print-architecture)}
case $ARCH in
  amd64) KOFFI=linux_x64 ;; arm64) KOFFI=linux_arm64 ;; armhf) KOFFI=linux_armhf ;; i386) KOFFI=linux_ia32 ;;
  riscv64) KOFFI=linux_riscv64d ;; loong64) KOFFI=linux_loong64 ;;
  *) die "no koffi binary for Debian architecture $ARCH" ;;
esac
[ "$(dpkg-parsechangelog -l $HERE/changelog -SVersion)" = "$UPSTREAM" ] ||
  die "$HERE/changelog's latest entry is not package.json's version $UPSTREAM: add an entry"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/berkeleyd-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
LIB=$R/usr/lib/berkeleyd
DOC=$R/usr/share/doc/berkeleyd

# The changelog, with an entry for a suffixed version; its date stamps the build.
CHANGELOG=$STAGE/changelog
if [ -n "$SUFFIX" ]; then
  {
    printf 'berkeleyd (%s) unstable; urgency=medium\n\n  * Rebuild of %s with the version suffix %s.\n\n' "$VERSION" "$UPSTREAM" "$SUFFIX"
    printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l $HERE/changelog -SMaintainer)" "$(date -R -u -d "@$(dpkg-parsechangelog -l $HERE/changelog -STimestamp)")"
    cat $HERE/changelog
  } > "$CHANGELOG"
else
  cp $HERE/changelog "$CHANGELOG"
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$CHANGELOG" -STimestamp)}

# 1. The code: the built JavaScript (no tests, benchmarks, maps), and package.json ("type": "module", the version).
mkdir -p "$LIB/dist" "$R/usr/bin"
cp -r dist/bin dist/lib "$LIB/dist/"
find "$LIB/dist" -name '*.map' -delete
node -e 'const p = require("./package.json"); process.stdout.write(JSON.stringify({ name: p.name, version: p.version, description: p.description, type: p.type, license: p.license }, null, 2) + "\n")' > "$LIB/package.json"
sed -i '1s|^#!/usr/bin/env node$|#!/usr/bin/node|' "$LIB/dist/bin/berkeleyd.js"
ln -s ../lib/berkeleyd/dist/bin/berkeleyd.js "$R/usr/bin/berkeleyd"

# 2. The production dependencies, exactly the lock file's (npm ls --omit=dev), then pruned:
#    koffi keeps the prebuilt binary of $ARCH only; no sources, docs, tests or type definitions.
MODULES=()
while read -r dir; do MODULES+=("${dir#"$PWD/"}"); done < <(npm ls --omit=dev --all --parseable --offline | tail -n +2)
for m in "${MODULES[@]}"; do mkdir -p "$LIB/$(dirname "$m")" && cp -r "$m" "$LIB/$m"; done
# Their copyright and license lines go to the copyright file, so the license files need not stay.
mkdir -p "$DOC"
(cd "$R" && node "$OLDPWD/dist/scripts/deb-copyright.js" usr/lib/berkeleyd/node_modules/* usr/lib/berkeleyd/node_modules/@*/*) > "$DOC/copyright"
K=$LIB/node_modules/koffi
find "$K/build/koffi" -mindepth 1 -maxdepth 1 ! -name "$KOFFI" -exec rm -rf {} +
rm -rf "$K/src" "$K/vendor" "$K/doc" "$K/lib"
[ -f "$K/build/koffi/$KOFFI/koffi.node" ] || die "koffi has no $KOFFI binary"
find "$LIB/node_modules" -type d \( -name test -o -name tests -o -name example -o -name examples -o -name doc -o -name docs -o -name .github \) -prune -exec rm -rf {} +
find "$LIB/node_modules" -type f \( -name '*.md' -o -name '*.ts' -o -name '*.map' -o -name '*.html' -o -iname 'licen[cs]e*' -o -name Makefile -o -name '.*' \) -delete
find "$LIB/node_modules" -type d -empty -delete
if [ "$ARCH" = "$(dpkg --print-architecture)" ] && command -v strip >/dev/null; then
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$K/build/koffi/$KOFFI/koffi.node"
fi

# 3. The service: the unit runs the package's own binary (not whichever berkeleyd is first in PATH) and names its man page.
install -D -m 644 systemd/berkeleyd.default "$R/etc/default/berkeleyd"
install -D -m 644 systemd/ntp-units.d/80-berkeleyd.list "$R/usr/lib/systemd/ntp-units.d/80-berkeleyd.list"
UNIT=$R/lib/systemd/system/berkeleyd.service
install -D -m 644 systemd/berkeleyd.service "$UNIT"
grep -q '^ExecStart=/usr/bin/env berkeleyd ' "$UNIT" || die "systemd/berkeleyd.service: ExecStart is not '/usr/bin/env berkeleyd ...' any more; update $0"
sed -i -e 's|^ExecStart=/usr/bin/env berkeleyd |ExecStart=/usr/bin/berkeleyd |' \
  -e 's|^Description=.*|&\nDocumentation=man:berkeleyd(8) man:berkeleyd.default(5)|' "$UNIT"
EXECSTART_VIRTUAL=$(sed -n 's|^ExecStart=/usr/bin/berkeleyd run |ExecStart=/usr/bin/berkeleyd run --clock virtual |p' "$UNIT")

# 4. Documentation: man pages and completion generated from bin/'s definitions; policy files.
node dist/scripts/docs-gen.js "$STAGE/gen"
install -D -m 644 "$STAGE/gen/berkeleyd.8" "$R/usr/share/man/man8/berkeleyd.8"
install -D -m 644 "$STAGE/gen/berkeleyd.default.5" "$R/usr/share/man/man5/berkeleyd.default.5"
install -D -m 644 "$STAGE/gen/berkeleyd.bash" "$R/usr/share/bash-completion/completions/berkeleyd"
install -D -m 644 docs/alerts.rules.yml "$DOC/examples/alerts.rules.yml"
install -m 644 README.md "$DOC/README.md"
install -m 644 "$CHANGELOG" "$DOC/changelog"
gzip -9n "$R/usr/share/man/man8/berkeleyd.8" "$R/usr/share/man/man5/berkeleyd.default.5" "$DOC/README.md" "$DOC/changelog"

# 5. Control files.
find "$R" -type d -exec chmod 755 {} + && find "$R" -type f -exec chmod 644 {} +
chmod 755 "$LIB/dist/bin/berkeleyd.js"
mkdir -p "$R/DEBIAN"
for s in postinst prerm postrm; do
  awk -v l="$EXECSTART_VIRTUAL" '{ if ($0 == "@EXECSTART_VIRTUAL@") print l; else print }' "$HERE/$s" > "$R/DEBIAN/$s"
  chmod 755 "$R/DEBIAN/$s"
done
echo /etc/default/berkeleyd > "$R/DEBIAN/conffiles"
mkdir -p "$STAGE/debian" && printf 'Source: berkeleyd\n\nPackage: berkeleyd\nArchitecture: any\n' > "$STAGE/debian/control"
SHLIBS=$(cd "$STAGE" && dpkg-shlibdeps -O "root/usr/lib/berkeleyd/node_modules/koffi/build/koffi/$KOFFI/koffi.node" 2>/dev/null | sed -n 's/^shlibs:Depends=//p') || true
[ -n "$SHLIBS" ] || SHLIBS='libc6, libgcc-s1, libstdc++6' # a foreign architecture: no symbols files here
# Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory or link.
SIZE=$(cd "$R" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' -o -printf '1024\n' \) | awk '{ k += int(($1 + 1023) / 1024) } END { print k }')
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@INSTALLED_SIZE@|$SIZE|" -e "s|@SHLIBS@|$SHLIBS|" \
  -e "s|@MAINTAINER@|$(dpkg-parsechangelog -l "$CHANGELOG" -SMaintainer)|" $HERE/control.in > "$R/DEBIAN/control"
(cd "$R" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$R/DEBIAN/md5sums"
find "$R" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

OUT=${BERKELEYD_DEB_OUTDIR:-.}
DEB=$OUT/berkeleyd_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
echo "$DEB: $(stat -c %s "$DEB") bytes, Installed-Size $SIZE KiB, $(find "$R" -path "$R/DEBIAN" -prune -o -type f -print | wc -l) files"
