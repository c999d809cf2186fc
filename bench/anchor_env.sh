# Sourced by bench/compare_nn.sh and bench/compare_train.sh (POSIX sh): sets ANCHOR_CORE to the
# OPENBLAS_CORETYPE the PyTorch anchor runs with, and ANCHOR_DETECTED to what OpenBLAS detects itself.
# The anchor gets OpenBLAS's fastest kernels for this CPU: when OpenBLAS's own detection falls back to
# a generic core on a CPU it does not know (OpenBLAS 0.3.21 reports "Prescott", SSE3, on Sapphire
# Rapids, 4x slower GEMMs), the core is set from the CPU flags: SkylakeX with AVX-512, Haswell with
# AVX2. ANCHOR_CORETYPE (environment) forces a core. Empty ANCHOR_CORE: OpenBLAS chooses.
ANCHOR_DETECTED=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_VERBOSE=2 OPENBLAS_NUM_THREADS=1 \
  /usr/bin/python3 -c 'import torch; torch.mm(torch.ones(2, 2), torch.ones(2, 2))' 2>&1 | sed -n 's/^Core: //p' | head -1)
ANCHOR_CORE=
case "$ANCHOR_DETECTED" in
  Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Katmai|Coppermine|Northwood|Banias|"")
    if grep -qw avx512f /proc/cpuinfo; then ANCHOR_CORE=SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then ANCHOR_CORE=Haswell; fi ;;
esac
if [ -n "${ANCHOR_CORETYPE:-}" ]; then ANCHOR_CORE=$ANCHOR_CORETYPE; fi
