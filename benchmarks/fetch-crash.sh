#!/bin/sh
# Put Debian trixie's crash 8.0.6 in ~/.cache/crashtui-bench/crash-trixie/ without touching the
# system: bookworm's crash 8.0.2 miscounts the tasks of 6.1 kernels, and installing trixie's
# package would pull trixie's libc. Downloads crash, libc6, libstdc++6 and libgcc-s1 from
# trixie (needs an apt source for trixie, e.g. the low-pinned one sample-dumps/make-dump adds),
# unpacks them, and writes a wrapper `crash-8.0.6` that runs crash with trixie's own loader.
# benchmarks/compare.py uses that wrapper when it exists.
set -eu
DEST="${CRASHTUI_BENCH_CACHE:-$HOME/.cache/crashtui-bench}/crash-trixie"
mkdir -p "$DEST"
cd "$DEST"
if ! apt-cache policy crash | grep -q trixie; then
  echo "no trixie apt source: add one (pinned low), then apt-get update" >&2
  exit 1
fi
apt-get download crash/trixie libc6/trixie libstdc++6/trixie libgcc-s1/trixie
for deb in ./*.deb; do dpkg-deb -x "$deb" root; done
cat > crash-8.0.6 <<'EOF'
#!/bin/sh
# Debian trixie's crash 8.0.6 run on bookworm with trixie's own libc/libstdc++ (private loader).
R="$(dirname "$(readlink -f "$0")")/root"
L="$R/usr/lib/x86_64-linux-gnu"
exec "$L/ld-linux-x86-64.so.2" --library-path "$L:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "$R/usr/bin/crash" "$@"
EOF
chmod +x crash-8.0.6
./crash-8.0.6 --version | sed -n 2p
