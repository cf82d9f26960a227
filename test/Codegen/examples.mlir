// Every flat example of examples/ compiles through the training pipeline
// into C++ that the system compiler accepts (the hierarchical ones are in
// examples-hierarchical.mlir).
// RUN: %package %examples/lstm3x512_baseline.mlir %t/baseline 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/baseline/step.cpp
// RUN: %package %examples/lstm2x512_moe8.mlir %t/moe8 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/moe8/step.cpp
// RUN: %package %examples/lstm2x512_moe64.mlir %t/moe64 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/moe64/step.cpp
// RUN: %package %examples/lstm2x512_moe512.mlir %t/moe512 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/moe512/step.cpp
// RUN: %package %examples/nmt_ffn_moe.mlir %t/nmt 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/nmt/step.cpp
// RUN: %package %examples/tiny_nmt.mlir %t/tiny_nmt 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/tiny_nmt/step.cpp
// RUN: %package %examples/small_lstm_moe.mlir %t/small 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/small/step.cpp
// RUN: FileCheck %s --input-file=%t/moe8/step.cpp

// Batchwise gating (paper Appendix A) trains with the batchwise mask and
// Eq. 8; its evaluation copy routes with the learned thresholds (Eq. 7).
// Each expert's segment has the batchwise mask's m rows, so the expert
// GEMMs are strided-batched (8 experts, m rows each, 512 x 512), forward
// and backward, and never read the offsets.
// CHECK-LABEL: extern "C" void lstm2x512_moe8_train_step(
// CHECK: moe::rt::step::batchwiseMask(
// CHECK: moe::rt::step::batchwiseThresholdLossForward(
// CHECK: moe::rt::step::batchedMatmulForward({{v[0-9]+}}, 8, [[M:[0-9]+]], 512, 512,
// CHECK-NOT: groupedMatmul
// CHECK: moe::rt::step::batchedMatmulBackward({{v[0-9]+}}, 8, [[M]], 512, 512,
// CHECK: moe::rt::step::batchwiseThresholdLossBackward(
// CHECK-LABEL: extern "C" void lstm2x512_moe8_eval(
// CHECK-NOT: batchwiseMask
// The last argument is the compiled capacity of the assignments (here
// every pair: twice k * tokens is more than 8192 * 8).
// CHECK: moe::rt::step::thresholdMask({{.*}}, 8192, 8, 65536);
// CHECK: moe::rt::step::dispatchPlan(
