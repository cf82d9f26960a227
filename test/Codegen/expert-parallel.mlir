// The expert-parallel lowering: exchanges, the *Rows variants of the expert
// ops on a rank's received rows, shard-sized expert gradients and Adam
// counts. The C++ compiles with the system compiler and the CUDA with nvcc.
// RUN: moe-opt %examples/nmt_ffn_moe.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | moe-translate --moe-to-cpp -o %t.cpp
// RUN: FileCheck %s --input-file=%t.cpp
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t.cpp
// RUN: %if nvcc %{ moe-opt %examples/small_lstm_moe.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | moe-translate --moe-to-cuda -o %t.cu %}
// RUN: %if nvcc %{ %nvcc -std=c++17 -x cu -c %t.cu -I%moe_src_root -o %t.o %}
// RUN: moe-opt %examples/small_lstm_moe.mlir --moe-train-pipeline="expert-parallel=true" 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=MANIFEST

// CHECK-LABEL: extern "C" void nmt_ffn_moe_train_step(
// CHECK: moe::rt::step::exchangeCounts([[CTX:v[0-9]+]], [[OFF:v[0-9]+]], [[COUNTS:v[0-9]+]], [[ROFF:v[0-9]+]], 2048);
// CHECK: moe::rt::step::Rows [[RECV:v[0-9]+]] = moe::rt::step::exchangeToExperts([[CTX]], {{v[0-9]+}}, [[OFF]], [[COUNTS]], 10240, 2048, 512);
// CHECK: moe::rt::step::Rows [[H:v[0-9]+]] = moe::rt::step::groupedMatmulRows([[CTX]], [[RECV]], {{v[0-9]+}}, [[ROFF]], 2048, 512, 2048,
// CHECK: moe::rt::step::Rows [[A:v[0-9]+]] = moe::rt::step::activateRows([[CTX]], [[H]], 2048, moe::rt::step::Activation::Relu);
// CHECK: moe::rt::step::Rows [[Y:v[0-9]+]] = moe::rt::step::groupedMatmulRows([[CTX]], [[A]], {{v[0-9]+}}, [[ROFF]], 2048, 2048, 512,
// CHECK: moe::rt::step::exchangeToTokens([[CTX]], [[Y]], [[OFF]], [[COUNTS]], {{v[0-9]+}}, 10240, 2048, 512);
// The backward pass: the same exchanges the other way round, the expert
// gradient in the call's pool at the shard's size.
// CHECK: = moe::rt::step::poolShard<float>([[CTX]], 2147483648);
// CHECK: moe::rt::step::groupedMatmulGradRows(
// CHECK: moe::rt::step::activateGradRows(
// CHECK: int64_t [[N:v[0-9]+]] = moe::rt::step::shardCount([[CTX]], 2147483648);
// CHECK: moe::rt::step::adamUpdate([[CTX]], [[N]], 

// The manifest keeps the global shape of a sharded tensor and says how it
// is split; replicated tensors have no "shard".
// MANIFEST: "name": "moe.expert_weights"
// MANIFEST-NEXT: "role": "param"
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 8,
// MANIFEST-NEXT: 64,
// MANIFEST-NEXT: 64
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "shard": {
// MANIFEST-NEXT: "dim": 0,
// MANIFEST-NEXT: "mesh": "ranks"
