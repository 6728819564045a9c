#!/usr/bin/env bash
# Start (idempotently) the 2-node local Slurm cluster the Slurm-marked tests run against (2 fake GPUs per node, QOS
# limits enforced: the GPU, time-limit and queue-limit tests need both), and check it answers.
# Needs root (the start script installs and runs munged, mariadb, slurmdbd, slurmctld and two slurmd).
# Usage: bash .ci/slurm.sh          (from anywhere inside the repository)
# The cluster lives at ../shared/slurm relative to the repository root; stop it with stop-local-slurm.sh there.
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
shared="$root/../shared/slurm"
[ -x "$shared/start-local-slurm.sh" ] || { echo ".ci/slurm.sh: no $shared/start-local-slurm.sh" >&2; exit 1; }
export SLURM_LOCAL_NODES=${SLURM_LOCAL_NODES:-2} SLURM_LOCAL_GPUS=${SLURM_LOCAL_GPUS:-2} SLURM_LOCAL_ENFORCE=${SLURM_LOCAL_ENFORCE:-limits}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
bash "$shared/start-local-slurm.sh"
# a cluster left running from before, without the GPUs or the QOS enforcement asked for: restart it with them
if ! scontrol show config | grep -q "^AccountingStorageEnforce *= *.*${SLURM_LOCAL_ENFORCE}" \
    || ! scontrol show node node1 | grep -q "Gres=gpu:${SLURM_LOCAL_GPUS}"; then
    echo ".ci/slurm.sh: restarting the cluster with GPUs=${SLURM_LOCAL_GPUS}, enforce=${SLURM_LOCAL_ENFORCE}"
    bash "$shared/stop-local-slurm.sh"
    bash "$shared/start-local-slurm.sh"
fi
scontrol show config | grep "^AccountingStorageEnforce" | sed 's/^/.ci\/slurm.sh: /'
sinfo -N -h -o '%N %T' | sed 's/^/.ci\/slurm.sh: node /'
sacct -n -X -S now-1minute >/dev/null  # accounting answers (the dispatcher reads exit codes from sacct)
