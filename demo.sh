#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, builds, makes a synthetic demo model
# sized to the free disk if there is none (random weights!), streams a short generation from it at
# a RAM budget well below its size, and prints the benchmark summary against the storage bandwidth
# measured in the same run.
#
#   ./demo.sh                 # everything on the demo model
#   ./demo.sh -m model.gguf   # the same on your model (any sluice run/bench flags pass through)
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
scripts/build.sh release
exec build/cli/sluice demo "$@"
