// The paper's hierarchical 5.1 models (batchwise gating at both levels)
// compile through the training pipeline into C++ that the system compiler
// accepts; compile time does not grow with the number of experts.
// RUN: %package %examples/lstm2x512_hmoe512.mlir %t/h512 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/h512/step.cpp
// RUN: %package %examples/lstm2x512_hmoe4096.mlir %t/h4096 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/h4096/step.cpp
// RUN: %package %examples/lstm2x512_hmoe32768.mlir %t/h32768 2>/dev/null
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t/h32768/step.cpp
// RUN: FileCheck %s --input-file=%t/h32768/step.cpp

// Training: a batchwise mask over the groups, one per group over its
// experts, the two levels composed; evaluation: threshold masks at both.
// CHECK-LABEL: extern "C" void lstm2x512_hmoe32768_train_step(
// CHECK: moe::rt::step::batchwiseMask(
// CHECK: moe::rt::step::groupedBatchwiseMaskForward(
// CHECK: moe::rt::step::composeRoutesCsrForward(
// CHECK-LABEL: extern "C" void lstm2x512_hmoe32768_eval(
// Their last arguments are the compiled capacities: twice the 16384 rows
// and 65536 assignments of training.
// CHECK: moe::rt::step::thresholdMask({{.*}}, 8192, 32, 32768);
// CHECK: moe::rt::step::groupedThresholdMask({{.*}}, 32768, 1024, 32, 131072);
