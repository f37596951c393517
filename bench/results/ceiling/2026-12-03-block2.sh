# Alternates paychan and its floor (bench/ceiling.py) in two rounds; prints each median and the host steal (ticks of 10 ms) during it.
cd /work/main
steal() { awk '/^cpu /{print $9}' /proc/stat; }
run() { s0=$(steal); "$@" 2>&1 | grep -E "^median|ratio" | cut -c1-200; s1=$(steal); echo "   (steal $(( s1 - s0 )) ticks)"; }
.venv/bin/python bench/machine_probe.py --rounds 1 2>&1 | grep wake_up
for r in 1 2; do
  echo "=== round $r: 5 clients"
  run bench/run_bench.sh --workers 1 --runs 3 --payments 2000 --clients 5 --no-reference
  run .venv/bin/python bench/ceiling.py --kinds durable --clients 5 --payments 2000 --workers 1
  run .venv/bin/python bench/ceiling.py --kinds durable --clients 5 --payments 2000 --workers 1 --inline-below 0
  echo "=== round $r: 6000/s"
  run bench/run_bench.sh --workers 2 --runs 3 --payments 500 --clients 100 --rate 6000 --no-reference
  run .venv/bin/python bench/ceiling.py --kinds durable --rate 6000
  echo "=== round $r: headline"
  run bench/run_bench.sh --workers 2 --runs 3 --payments 500 --clients 100
  run .venv/bin/python bench/ceiling.py
done
.venv/bin/python bench/machine_probe.py --rounds 1 2>&1 | grep wake_up
