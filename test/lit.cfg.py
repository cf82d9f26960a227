# -*- Python -*-
# lit configuration for moe-compiler's compiler tests.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit", "Inputs"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%moe_src_root", config.moe_src_root))
config.substitutions.append(("%examples", os.path.join(config.moe_src_root, "examples")))

llvm_config.use_default_substitutions()
# FileCheck runs with --enable-var-scope so captures do not leak across
# CHECK-LABELs.
llvm_config.with_environment("FILECHECK_OPTS", "--enable-var-scope")

llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
tool_dirs = [config.moe_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["moe-opt", "moe-translate"], tool_dirs)

# Emitted sources are compiled in tests: %cxx always, %nvcc where CUDA is.
config.substitutions.append(("%cxx", config.cxx_compiler))
if config.nvcc:
    config.available_features.add("nvcc")
    config.substitutions.append(("%nvcc", config.nvcc))
    config.substitutions.append(("%cuda_includes", " ".join(
        "-I" + d for d in config.cuda_include_dirs.split(";") if d)))

# The runtime driver, for the integration tests. Compiled packages are
# cached in the build tree, shared by the tests.
if config.have_moe_run:
    config.available_features.add("moe-run")
    llvm_config.add_tool_substitutions(["moe-run"], tool_dirs)
    config.environment["MOE_RUN_CACHE"] = os.path.join(
        config.moe_obj_root, "moe-run-cache")
config.substitutions.append(("%package", "bash " + os.path.join(
    config.moe_src_root, "scripts", "package.sh")))
config.environment["BUILD_DIR"] = config.moe_obj_root
# scripts/sanitize.sh: MOE_SANITIZE_CXX names a c++ wrapper that adds
# -fsanitize=address,undefined; moe-run compiles packages with it (through
# CXX) so that they are instrumented like the libmoe_rt.so they link.
if os.environ.get("MOE_SANITIZE_CXX"):
    config.environment["CXX"] = os.environ["MOE_SANITIZE_CXX"]
# scripts/lm-sweep.py draws its plot with gnuplot (scripts/install-deps.sh).
if shutil.which("gnuplot"):
    config.available_features.add("gnuplot")
# Multi-rank runs on one machine (the CPU backend over MPI).
if shutil.which("mpirun"):
    config.available_features.add("mpi")
    flags = "--oversubscribe"
    if os.geteuid() == 0:
        flags += " --allow-run-as-root"
    config.substitutions.append(("%mpirun", "mpirun " + flags))

# The King James Bible for the end-to-end tests, when bible-kjv is there.
if shutil.which("bible"):
    config.available_features.add("kjv")
