#!/usr/bin/env bash
# Set up (if needed), make a small demo library from synthesised audio,
# import it with beets (musicnn analyzes it on import), and query it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DEMO="$PWD/demo"
rm -rf "$DEMO"
mkdir -p "$DEMO/beets"
export BEETSDIR="$DEMO/beets"
cat > "$BEETSDIR/config.yaml" <<YAML
directory: $DEMO/music
library: $DEMO/beets/library.db
plugins: musicnn
create_backup_before_migrations: no
import:
  copy: yes
  autotag: no
YAML
BEET=".venv/bin/beet"

echo "== making 8 tracks of synthesised music in $DEMO/incoming"
.venv/bin/python -m tests.synth "$DEMO/incoming" >/dev/null
echo "== beet import (musicnn analyzes each album as it is imported)"
$BEET import -q "$DEMO/incoming"
echo "== beet musicnn (nothing left to analyze: a quick check)"
$BEET musicnn
echo "== beet ls -f '\$artist - \$title: mood=[\$mood] genre=\$musicnn_genre happy=\$musicnn_happy party=\$musicnn_party tags=[\$musicnn_tags]'"
$BEET ls -f '$artist - $title: mood=[$mood] genre=$musicnn_genre happy=$musicnn_happy party=$musicnn_party tags=[$musicnn_tags]'
echo "== beet ls -a -f '\$album: mood=[\$mood] genre=\$musicnn_genre happy=\$musicnn_happy sad=\$musicnn_sad'"
$BEET ls -a -f '$album: mood=[$mood] genre=$musicnn_genre happy=$musicnn_happy sad=$musicnn_sad'
echo "== beet ls mood:happy"
$BEET ls mood:happy
echo "== beet ls musicnn_party:0.5.."
$BEET ls musicnn_party:0.5..
echo "== beet ls musicnn_genre:ambient"
$BEET ls musicnn_genre:ambient
echo
echo "Try it yourself: BEETSDIR=$BEETSDIR $BEET ls mood:relaxed"
