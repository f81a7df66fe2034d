#!/usr/bin/env bash
# Idempotent set-up: ffmpeg (the tests and the demo encode audio with it), a
# virtualenv in .venv with the plugin (editable) and its test tools, and
# musicnn==0.1.0 for the tests only, which compare our network with its own
# (without its obsolete dependency pins; the plugin ships the weights itself),
# and torch's CPU build for backend torch's tests (tests/test_torch.py).
# Run by demo.sh, test.sh and install-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "setup: installing ffmpeg" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import beetsplug.musicnn, imageio_ffmpeg, openvino, musicnn.configuration, samplerate, tf_keras" 2>/dev/null; then
    echo "setup: installing beets-musicnn and its dependencies (a few minutes the first time)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    .venv/bin/python -m pip install -q --no-deps musicnn==0.1.0
fi

# torch's CPU build for backend torch's tests: on these machines pip takes
# torch==2.13.0 from a CPU wheel kept on disk (183 MB, about 25 s). Elsewhere
# PyPI's Linux wheel is a CUDA build with GBs of nvidia-* packages: install a
# CPU build yourself first where that matters.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
    echo "setup: installing torch (CPU build) for the torch backend's tests" >&2
    .venv/bin/python -m pip install -q torch==2.13.0
fi
