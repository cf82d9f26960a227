// RUN: moe-opt %examples/tiny_nmt.mlir --moe-train-pipeline=optimizer=none 2>/dev/null | moe-translate --moe-to-cpp -o %t.cpp
// RUN: FileCheck %s --input-file=%t.cpp
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t.cpp
// RUN: moe-opt %examples/tiny_nmt.mlir --moe-train-pipeline=optimizer=none 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=MANIFEST

// Padded batches in the emitted code (examples/tiny_nmt.mlir: batch 3,
// source 6, target 5, d = 8, 4 experts, k = 2). The source lengths are
// argument 1 (v3 here, as the argument pointers are numbered): the MoE
// layer's dropPadding (batch 3, time 6, k 2) gives the row pointers that
// the load estimate, its gradient and the gates' gradient read, and the
// attention takes the lengths; its gradient needs nothing more.
// CHECK-LABEL: extern "C" void tiny_nmt_train_step(
// CHECK: [[LEN:v[0-9]+]] = moe::rt::step::argument<int32_t>({{v[0-9]+}}, 1);
// CHECK: moe::rt::step::dropPadding({{v[0-9]+}}, [[E:v[0-9]+]], [[G:v[0-9]+]], [[LEN]], [[ROWS:v[0-9]+]], [[KE:v[0-9]+]], [[KG:v[0-9]+]], 3, 6, 2);
// CHECK: moe::rt::step::loadEstimateForward({{v[0-9]+}}, 18, 4, 2, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, [[ROWS]], {{v[0-9]+}});
// CHECK: moe::rt::step::importanceForward({{v[0-9]+}}, 36, 4, [[KE]], [[KG]],
// CHECK: moe::rt::step::dispatchPlan({{v[0-9]+}}, [[KE]], [[ROWS]],
// CHECK: moe::rt::step::combineForward({{v[0-9]+}}, 18, 36, 8, [[ROWS]], {{v[0-9]+}}, [[KG]],
// CHECK: moe::rt::step::attention({{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, [[LEN]], {{v[0-9]+}}, 3, 6, 5, 8, 8, 8,
// CHECK: moe::rt::step::attentionGrad(
// CHECK: moe::rt::step::loadEstimateGrad({{.*}}, [[ROWS]], {{v[0-9]+}}, {{v[0-9]+}}, 18, 4, 2);
// CHECK: moe::rt::step::dropPaddingBackward({{v[0-9]+}}, 18, 2, [[ROWS]],

// The lengths input's manifest entry: its range and the input it pads
// (the source ids, whose embedding feeds both the attention's source and
// the MoE layer). Ids, targets and parameters are described as before.
// MANIFEST: "symbol": "tiny_nmt_eval"
// MANIFEST: "id_bound": 40,
// MANIFEST-NEXT: "index": 0,
// MANIFEST-NEXT: "name": "source",
// MANIFEST-NEXT: "padding": false,
// MANIFEST: "index": 1,
// MANIFEST-NEXT: "length_range": [
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 6
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "name": "source_lengths",
// MANIFEST-NEXT: "padding": false,
// MANIFEST-NEXT: "pads": [
// MANIFEST-NEXT: "source"
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "role": "input",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 3
// MANIFEST-NEXT: ]
// MANIFEST: "name": "targets",
// MANIFEST-NEXT: "padding": true,
