# Run as root from the repository root: alternates the guest halt-polling setting (0, 200 us) around the
# latency-bound benchmarks and the floor, then sets it back to 0 (the boot setting). Output: *-haltpoll.txt.
set -u
P=/sys/module/haltpoll/parameters/guest_halt_poll_ns
for ns in 0 200000 0 200000; do
  echo $ns > $P
  echo "=== guest_halt_poll_ns=$(cat $P)"
  .venv/bin/python bench/machine_probe.py --rounds 1 2>&1 | grep -E "wake_up|round_trip|fdatasync"
  bench/run_bench.sh --workers 1 --runs 3 --payments 2000 --clients 5 --no-reference 2>&1 | grep -E "^run|^median"| cut -c1-330
  bench/run_bench.sh --workers 2 --runs 3 --payments 500 --clients 100 --rate 6000 --no-reference 2>&1 | grep -E "^run|^median" | cut -c1-330
  bench/run_bench.sh --workers 2 --runs 3 --payments 500 --clients 100 2>&1 | grep -E "^run|^median|ratio" | cut -c1-330
  .venv/bin/python bench/ceiling.py --kinds durable 2>&1 | grep median
done
echo 0 > $P; echo "restored $(cat $P)"
