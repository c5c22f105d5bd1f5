#!/usr/bin/env bash
# make test-slurm: run the demo workflow on a real (local, single-node) SLURM cluster and check that
# its results equal a local run's. Installs slurm-wlm and munge from Debian packages when missing
# (needs root), starts munged, slurmctld and slurmd under a temporary folder, and stops every daemon
# it started on exit, failure or interrupt.
#   tools/slurm/test.sh [N_SUBJECTS [TARGET...]]   (default 6 subjects in batches of 3; all)
#   SEGMENTATION_CHECKPOINT=path.pt tools/slurm/test.sh   (segment with another checkpoint)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
n_subjects=${1:-6}
shift || true
targets=("$@")   # none: the workflow's default target
smk=$root/.venv/bin/snakemake
started=$(date +%s)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "installing SLURM needs root (apt-get install slurm-wlm munge)" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/cardiopheno-slurm.XXXXXX)
cleanup() {
    local rc=$?
    "$root/tools/slurm/cluster.sh" stop "$work/cluster" || true
    if [[ $rc -eq 0 ]]; then rm -rf "$work"; else echo "kept $work for inspection" >&2; fi
    exit $rc
}
trap cleanup EXIT INT TERM

"$root/tools/slurm/cluster.sh" start "$work/cluster"
export SLURM_CONF=$work/cluster/slurm.conf

cat > "$work/config.yaml" <<CONF
cohort: {source: synthetic}
synthetic: {n_subjects: $n_subjects, seed: 0, fault_fraction: 0.2}
batching: {batch_size: 3}
CONF
# A segmentation checkpoint other than the shipped model (e.g. one still being trained).
if [[ -n ${SEGMENTATION_CHECKPOINT:-} ]]; then
    echo "segmentation: {checkpoint: $SEGMENTATION_CHECKPOINT}" >> "$work/config.yaml"
fi

echo "== local run"
"$smk" --workflow-profile workflow/profiles/default --cores 2 --configfile "$work/config.yaml" \
    -d "$work/local" -s "$root/Snakefile" --quiet rules -- "${targets[@]}"

echo "== SLURM run"
# The site's copy of the profile, as README.md tells users to make it (--set-resources and
# --set-threads on the command line would replace the profile's lists, not add to them):
# segmentation goes to the gpu partition, whose node advertises one (device-less) gpu gres; this
# node has 2 CPUs, so no job asks for more threads than 2. The test cluster has no accounting
# database: job states come from squeue (MinJobAge=3600).
mkdir -p "$work/profile"
"$root/.venv/bin/python" - "$root/workflow/profiles/slurm/config.yaml" "$work/profile/config.yaml" <<'PY'
import sys, yaml
profile = yaml.safe_load(open(sys.argv[1]))
profile["set-resources"]["segment_batch"]["slurm_partition"] = "gpu"
profile["set-threads"] = {rule: min(n, 2) for rule, n in profile["set-threads"].items()}
profile.update({"jobs": 4, "latency-wait": 10, "slurm-status-command": "squeue",
                "slurm-init-seconds-before-status-checks": 2, "slurm-no-account": True})
yaml.safe_dump(profile, open(sys.argv[2], "w"))
PY
"$smk" --workflow-profile "$work/profile" --configfile "$work/config.yaml" -d "$work/slurm" \
    -s "$root/Snakefile" --slurm-logdir "$work/slurm-logs" --quiet rules -- "${targets[@]}"

echo "== jobs the cluster ran (comment, partition, GPUs requested, state)"
squeue -h -t all -O "Comment:100,Partition:20,tres-per-job:30,State:20" \
    | awk '{print $1 "|" $2 "|" $3 "|" $4}' | sort | tee "$work/jobs.txt"
n_jobs=$(wc -l < "$work/jobs.txt")
[[ $n_jobs -gt 0 ]] || { echo "no SLURM jobs were run" >&2; exit 1; }
if grep '^rule_segment_batch' "$work/jobs.txt" | grep -v '|gres:gpu:1|'; then
    echo "the segment_batch jobs above did not ask for a GPU" >&2; exit 1
fi
if grep -v '|COMPLETED$' "$work/jobs.txt"; then echo "jobs above did not complete" >&2; exit 1; fi

echo "== comparing results"
"$root/.venv/bin/python" "$root/tools/slurm/compare_results.py" "$work/local" "$work/slurm"

# The same targets for a user's cohort, less the demo's own (its montage, its batch split).
user_targets=()
for t in "${targets[@]}"; do
    [[ $t == *synth_montage* || $t == results/batches/* ]] || user_targets+=("$t")
done
if [[ ${#targets[@]} -eq 0 || ${#user_targets[@]} -gt 0 ]]; then
    echo "== SLURM run of the same cohort as a user's (cohort.source: manifest)"
    # The batch plan is written when the workflow is read, and each job reads it back
    # (read_index) instead of validating the manifest again.
    cohort=$work/local/results/cohort
    cat > "$work/config_manifest.yaml" <<CONF
cohort: {source: manifest, manifest: $cohort/manifest.csv, covariates: $cohort/covariates.csv,
         diagnoses: $cohort/diagnoses.csv, deaths: $cohort/deaths.csv}
batching: {batch_size: 3}
CONF
    grep '^segmentation' "$work/config.yaml" >> "$work/config_manifest.yaml" || true
    "$smk" --workflow-profile "$work/profile" --configfile "$work/config_manifest.yaml" \
        -d "$work/slurm_manifest" -s "$root/Snakefile" --slurm-logdir "$work/slurm-logs" \
        --quiet rules -- "${user_targets[@]}"
    "$root/.venv/bin/python" "$root/tools/slurm/compare_results.py" "$work/local" \
        "$work/slurm_manifest" --skip cohort figures/synth_montage
    n_jobs=$(squeue -h -t all | wc -l)
fi
echo "test-slurm passed: $n_jobs SLURM jobs, $(( $(date +%s) - started )) s in all"
