#!/usr/bin/env bash
# The one-step install, as a user does it: `pip install .` into a fresh
# virtualenv and `plugins: musicnn`, then import and analyze a small library
# with nothing else in sight (PATH is the new venv's bin: no system ffmpeg,
# and no musicnn package). Fails unless every track gets its genre and mood scores.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/setup.sh  # the project's .venv, to make the audio

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "install-check: making a library (encoded with the system ffmpeg, before hiding it)"
tracks=$(.venv/bin/python -m tests.synth "$WORK/incoming" | wc -l)

echo "install-check: pip install . into a fresh virtualenv (a few minutes)"
"${PYTHON:-python3}" -m venv "$WORK/venv"
# Build outputs go to $WORK: a build/lib in the checkout would keep stale files.
printf '[build]\nbuild_base = %s\n' "$WORK/build" > "$WORK/build.cfg"
DIST_EXTRA_CONFIG="$WORK/build.cfg" "$WORK/venv/bin/python" -m pip install -q .

mkdir "$WORK/beets"
cat > "$WORK/beets/config.yaml" <<YAML
directory: $WORK/music
library: $WORK/beets/library.db
plugins: musicnn
create_backup_before_migrations: no
import:
  copy: yes
  autotag: no
YAML
isolated() {
    env -i HOME="$WORK" PATH="$WORK/venv/bin" BEETSDIR="$WORK/beets" "$@"
}
fail() {
    echo "install-check: FAILED: $*" >&2
    exit 1
}

isolated python -c "import shutil, sys; sys.exit(shutil.which('ffmpeg') is not None)" \
    || fail "an ffmpeg is still on PATH"
isolated python -c "import importlib.util as u, sys; sys.exit(u.find_spec('musicnn') is not None)" \
    || fail "the musicnn package is importable in the fresh venv"

# Still in the checkout: its own beetsplug/ must not shadow the installed one.
echo "install-check: beet import, then beet musicnn, without a system ffmpeg"
isolated beet import -q "$WORK/incoming"
isolated beet musicnn

items=$(isolated beet ls | wc -l)
[ "$items" -eq "$tracks" ] || fail "$items items imported, $tracks made"
for field in musicnn_genre musicnn_happy musicnn_model; do
    filled=$(isolated beet ls -f "\$$field" | grep -cv -e '^$' -e '^\$' || true)
    [ "$filled" -eq "$tracks" ] || fail "$field is set on $filled of $tracks items"
done
isolated beet ls -f '$artist - $title: genre=$musicnn_genre mood=[$mood] happy=$musicnn_happy'
echo "install-check: took $((SECONDS - start)) s"
echo "install-check: 1 passed, 0 failed"
