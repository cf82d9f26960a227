// Input nested thousands deep would overflow the stack of MLIR's recursive
// parser (upstream mlir-opt 19 crashes on it); the tools refuse it with a
// located error before parsing, from a file or from standard input.

// RUN: %python -c "print('func.func @f() attributes {a = ' + '[' * 8000 + ']' * 8000 + '} {\n  return\n}')" > %t.attr.mlir
// RUN: not moe-opt %t.attr.mlir 2>&1 | FileCheck %s --check-prefix=ATTR
// RUN: not moe-opt --moe-train-pipeline %t.attr.mlir 2>&1 | FileCheck %s --check-prefix=ATTR
// RUN: not moe-translate --moe-to-cpp %t.attr.mlir 2>&1 | FileCheck %s --check-prefix=ATTR
// RUN: not moe-translate --moe-to-cuda --gemm-precision bf16 -o %t.cu %t.attr.mlir 2>&1 | FileCheck %s --check-prefix=ATTR
// RUN: not moe-opt < %t.attr.mlir 2>&1 | FileCheck %s --check-prefix=STDIN
// ATTR: attr.mlir:1:1031: error: input nests brackets more than 1000 levels deep; parsing it would overflow the stack
// STDIN: <stdin>:1:1031: error: input nests brackets more than 1000 levels deep

// 5000 nested regions: each opens a ( and a {, so level 1001 is the ( of the
// 501st op.
// RUN: %python -c "print('\"t.op\"() ({\n' * 5000 + '\"t.end\"() : () -> ()\n' + '}) : () -> ()\n' * 5000)" > %t.regions.mlir
// RUN: not moe-opt --allow-unregistered-dialect %t.regions.mlir 2>&1 | FileCheck %s --check-prefix=REGIONS
// RUN: not moe-opt --allow-unregistered-dialect --moe-train-pipeline %t.regions.mlir 2>&1 | FileCheck %s --check-prefix=REGIONS
// RUN: not moe-translate --allow-unregistered-dialect -o %t.cpp --moe-to-cpp %t.regions.mlir 2>&1 | FileCheck %s --check-prefix=REGIONS
// REGIONS: regions.mlir:501:7: error: input nests brackets more than 1000 levels deep

// Up to the limit the input is parsed; brackets in comments and strings,
// and the > of ->, do not count. Standard input is read after the check.
// RUN: %python -c "print('// ' + '[' * 2000 + '\nfunc.func @f() -> () attributes {a = \"' + '{' * 2000 + '\", b = ' + '[' * 998 + ']' * 998 + '} {\n  return\n}')" > %t.limit.mlir
// RUN: moe-opt < %t.limit.mlir | FileCheck %s --check-prefix=LIMIT
// LIMIT: func.func @f() attributes {a = "{{[{]+}}", b = {{\[+}}]
