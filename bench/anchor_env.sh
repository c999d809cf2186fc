# Sourced by bench/compare_nn.sh and bench/compare_train.sh (POSIX sh): sets ANCHOR_CORE to the
# OPENBLAS_CORETYPE the PyTorch anchor runs with, and ANCHOR_DETECTED to what OpenBLAS detects itself.
# The anchor gets OpenBLAS's fastest kernels for this CPU: when OpenBLAS's own detection falls back to
# a generic core on a CPU it does not know (OpenBLAS 0.3.21 reports "Prescott", SSE3, on Sapphire
# Rapids, 4x slower GEMMs), the core is set from the CPU flags: SkylakeX with AVX-512, Haswell with
# AVX2. ANCHOR_CORETYPE (environment) forces a core. Empty ANCHOR_CORE: OpenBLAS chooses.
# The anchor is PyTorch on OpenBLAS whatever BLAS Debian's alternatives point libblas.so.3 at (the reference
# BLAS is 15x slower and would make any ratio meaningless): OpenBLAS's directory goes first on
# LD_LIBRARY_PATH for the programs these scripts start, and what torch really loads is checked.
ANCHOR_OPENBLAS_DIR=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/openblas-pthread
if [ ! -e "$ANCHOR_OPENBLAS_DIR/libblas.so.3" ]; then
  echo "anchor_env.sh: the PyTorch anchor runs on OpenBLAS, but $ANCHOR_OPENBLAS_DIR/libblas.so.3 is missing" \
       "(apt-get install -y libopenblas0-pthread)" >&2
  exit 2
fi
LD_LIBRARY_PATH=$ANCHOR_OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
if ! /usr/bin/python3 -c 'import sys, torch; torch.mm(torch.ones(2, 2), torch.ones(2, 2)); sys.exit(0 if any("openblas" in l for l in open("/proc/self/maps")) else 1)'; then
  echo "anchor_env.sh: torch did not load OpenBLAS from $ANCHOR_OPENBLAS_DIR (see /proc/self/maps)" >&2
  exit 2
fi
ANCHOR_DETECTED=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_VERBOSE=2 OPENBLAS_NUM_THREADS=1 \
  /usr/bin/python3 -c 'import torch; torch.mm(torch.ones(2, 2), torch.ones(2, 2))' 2>&1 | sed -n 's/^Core: //p' | head -1)
ANCHOR_CORE=
case "$ANCHOR_DETECTED" in
  Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Katmai|Coppermine|Northwood|Banias|"")
    if grep -qw avx512f /proc/cpuinfo; then ANCHOR_CORE=SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then ANCHOR_CORE=Haswell; fi ;;
esac
if [ -n "${ANCHOR_CORETYPE:-}" ]; then ANCHOR_CORE=$ANCHOR_CORETYPE; fi
