#!/usr/bin/env bash
# Test-only decoder: ffmpeg, except that it crashes natively (SIGSEGV) on a
# file whose name contains "crashme", and hangs on one containing "slowpoke".
for arg in "$@"; do
    case "$arg" in
        *crashme*) kill -SEGV $$ ;;
        *slowpoke*) sleep 120 ;;
    esac
done
exec ffmpeg "$@"
