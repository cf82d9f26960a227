# -*- Python -*-
# lit configuration for moe-compiler's compiler tests.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit"]

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
