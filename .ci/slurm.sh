#!/usr/bin/env bash
# Start (idempotently) the 2-node local Slurm cluster the Slurm-marked tests run against, and check it answers.
# Needs root (the start script installs and runs munged, mariadb, slurmdbd, slurmctld and two slurmd).
# Usage: bash .ci/slurm.sh          (from anywhere inside the repository)
# The cluster lives at ../shared/slurm relative to the repository root; stop it with stop-local-slurm.sh there.
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
shared="$root/../shared/slurm"
[ -x "$shared/start-local-slurm.sh" ] || { echo ".ci/slurm.sh: no $shared/start-local-slurm.sh" >&2; exit 1; }
SLURM_LOCAL_NODES=${SLURM_LOCAL_NODES:-2} SLURM_LOCAL_GPUS=${SLURM_LOCAL_GPUS:-2} bash "$shared/start-local-slurm.sh"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
sinfo -N -h -o '%N %T' | sed 's/^/.ci\/slurm.sh: node /'
sacct -n -X -S now-1minute >/dev/null  # accounting answers (the dispatcher reads exit codes from sacct)
