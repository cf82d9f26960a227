// RUN: not moe-opt --moe-train-pipeline %s 2>&1 | FileCheck %s
// RUN: not moe-opt --moe-train-pipeline=eval=false %s 2>&1 | FileCheck %s
// RUN: moe-opt --moe-autodiff %s | FileCheck %s --check-prefix=ALONE

// A module without a model (here: none at all) gives the training pipeline
// nothing to differentiate, so it fails instead of printing a package
// without a step; moe-autodiff alone leaves such a module as it is.
// CHECK: moe-train-pipeline-invalid.mlir:{{[0-9]+}}:{{[0-9]+}}: error: no model function: expected a func.func with moe.param arguments that returns its loss
// ALONE: module
