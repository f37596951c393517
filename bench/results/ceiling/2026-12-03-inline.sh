# The floor with the store writing small groups in its loop (--inline-below 16) against its writer thread always (0), alternated.
cd /work/main
.venv/bin/python bench/machine_probe.py --rounds 1 2>&1 | grep wake_up
for n in 16 0 16 0; do
  echo "=== inline-below $n"
  .venv/bin/python bench/ceiling.py --kinds durable --clients 5 --payments 2000 --workers 1 --inline-below $n | grep median
  .venv/bin/python bench/ceiling.py --kinds durable --rate 6000 --inline-below $n | grep median
  .venv/bin/python bench/ceiling.py --kinds durable --inline-below $n | grep median
done
.venv/bin/python bench/machine_probe.py --rounds 1 2>&1 | grep wake_up
