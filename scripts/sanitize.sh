#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer in a separate build directory and runs every
# test under them: the unit tests (ctest) and the lit suite (moe-opt,
# moe-translate, moe-run ...). Any sanitizer report fails the run: UBSan
# does not recover (-fno-sanitize-recover=undefined), ASan aborts on the
# first error, LSan fails the process at exit.
#
# CUDA is off (-DMOE_ENABLE_CUDA=OFF): nvcc and ASan don't mix (nvcc's host
# compiler pass does not take -fsanitize, and the CUDA driver's mappings
# trip ASan's shadow memory), so this covers the CPU code paths only.
# LLVM/MLIR's own libraries are not instrumented, which is fine: our
# dialect, passes and codegen are, with the same flags as the runtime.
#
# Packages that moe-run compiles at run time link the ASan-built
# libmoe_rt.so; CXX (ctest) and MOE_SANITIZE_CXX (lit, see test/lit.cfg.py)
# name a wrapper, BUILD/san-cxx, that adds the sanitizer flags, so the
# compiled package .so is instrumented as well.
#
#   SAN_BUILD_DIR=build-asan   where to build (default: build-asan)
#   JOBS=N                     parallel build jobs (default: 2)
#
# Leaks in third-party code only are suppressed in scripts/sanitize-lsan.supp.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUILD=${SAN_BUILD_DIR:-build-asan}
JOBS=${JOBS:-2}
SAN="-fsanitize=address,undefined"
start=$(date +%s)

echo "== configure ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CXX_FLAGS="$SAN -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
  -DCMAKE_C_FLAGS="$SAN -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
  -DCMAKE_SHARED_LINKER_FLAGS="$SAN" \
  -DMOE_ENABLE_CUDA=OFF >/dev/null
echo "== build"
cmake --build "$BUILD" -j "$JOBS"
echo "== build took $(( $(date +%s) - start ))s"

# The compiler moe-run uses for packages: c++ with the sanitizer flags.
cat > "$BUILD/san-cxx" <<WRAP
#!/bin/sh
exec c++ $SAN -fno-omit-frame-pointer -fno-sanitize-recover=undefined "\$@"
WRAP
chmod +x "$BUILD/san-cxx"
export CXX="$(cd "$BUILD" && pwd)/san-cxx"   # SAN_BUILD_DIR may be absolute
# lit passes it on to moe-run as CXX (test/lit.cfg.py).
export MOE_SANITIZE_CXX="$CXX"

# allow_user_poisoning=0: LLVM's headers poison BumpPtrAllocator slabs when
# the includer is built with ASan, but the installed LLVM/MLIR libraries
# were built without it; the two copies of the inline allocator code then
# disagree and ASan reports use-after-poison inside MLIR's own dialect
# registration. (Our code does no manual poisoning of its own.)
# fast_unwind_on_malloc=0: full allocation stacks through the uninstrumented
# OpenMPI libraries, so that the suppressions can match them.
export ASAN_OPTIONS="detect_leaks=1:allow_user_poisoning=0:fast_unwind_on_malloc=0:strict_string_checks=1:detect_stack_use_after_return=1"
# use_tls=0: GCC 12's LeakSanitizer reads a bogus dynamic-TLS range
# ("DTLS 9 at 0x4697-0x400005799") in multi-rank moe-run under lit, once a
# dlopen()ed library with TLS is loaded, and its tracer dies with SIGSEGV
# ("Tracer caught signal 11") at exit. Not scanning TLS for roots can only
# add leak reports (pointers held only in thread_local), never hide one.
export LSAN_OPTIONS="suppressions=$ROOT/scripts/sanitize-lsan.supp:print_suppressions=0:use_tls=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

LOGS="$BUILD/sanitize-logs"
mkdir -p "$LOGS"

echo "== ctest (unit tests under ASan+UBSan)"
ctest_rc=0
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS" -E '^lit$') \
  2>&1 | tee "$LOGS/ctest.log" || ctest_rc=$?

echo "== lit (compiler tests under ASan+UBSan)"
lit_rc=0
python3 "$(llvm-config-19 --prefix)/build/utils/lit/lit.py" -sv "$BUILD/test" \
  2>&1 | tee "$LOGS/lit.log" || lit_rc=$?

echo "== sanitizer reports"
grep -hE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LOGS"/*.log | sort | uniq -c || echo "none"
echo "== sanitize.sh took $(( $(date +%s) - start ))s (logs in $LOGS)"
if [ "$ctest_rc" -ne 0 ] || [ "$lit_rc" -ne 0 ]; then
  echo "== FAILED (ctest rc=$ctest_rc, lit rc=$lit_rc)"
  exit 1
fi
echo "== clean"
