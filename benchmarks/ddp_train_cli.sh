#!/usr/bin/env bash
# tokens/s of `tinygradattn train` at N=1 and N=2 (one thread per rank), default task and
# nano charlm; alternating, twice each. Prints the median tokens/s over logged lines.
: "${DATA:=../shared/data/tinyshakespeare.txt}"   # run from the repository root, in a venv with ".[mpi]"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
D="${TMPDIR:-/tmp}/tga_ddp_cli"; rm -rf $D; mkdir -p $D
run() {  # name n args...
  local name=$1 n=$2; shift 2
  if [ "$n" = 1 ]; then tinygradattn train "$@" --no-progress --out $D/$name > $D/$name.log 2>&1
  else mpiexec -n $n --mca btl self,sm tinygradattn train "$@" --no-progress --out $D/$name > $D/$name.log 2>&1; fi
  python - "$D/$name" <<'PY'
import json, sys, glob, statistics
rows = [json.loads(l) for f in glob.glob(sys.argv[1] + "/**/metrics.jsonl", recursive=True) for l in open(f)]
tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]
keys = sorted(rows[-1].keys()) if rows else []
print(sys.argv[1].split("/")[-1], "n_lines", len(rows), "median tok/s", round(statistics.median(tps)) if tps else None, "max", round(max(tps)) if tps else None, keys[:12])
PY
}
for rep in 1 2; do
  run numwords_n1_$rep 1 --steps 120 --log-interval 10 --eval-interval 1000
  run numwords_n2_$rep 2 --steps 120 --log-interval 10 --eval-interval 1000
  run charlm_n1_$rep 1 --task charlm --data "$DATA" --steps 60 --log-interval 10 --eval-interval 1000
  run charlm_n2_$rep 2 --task charlm --data "$DATA" --steps 60 --log-interval 10 --eval-interval 1000
done
