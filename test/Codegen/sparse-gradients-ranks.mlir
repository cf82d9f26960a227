// The data-parallel lowering of the paper's vocabulary layers
// (lstm2x512_moe64: 793,471 words, d = 512, 8192 tokens and 8192 samples
// per rank): `auto` goes sparse, the ranks' rows are summed over the union
// (moe::rt::step::RowSum, taken apart into RowIds and Rows) and lazy Adam
// takes them; the [793471, 512] gradients are not all-reduced. The C++
// compiles with the system compiler and the CUDA with nvcc.
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-train-pipeline="data-parallel=true eval=false decode-step=false" 2>/dev/null | moe-translate --moe-to-cpp -o %t.cpp
// RUN: FileCheck %s --input-file=%t.cpp
// RUN: %cxx -std=c++17 -fsyntax-only -I%moe_src_root %t.cpp
// RUN: %if nvcc %{ moe-opt %examples/lstm2x512_moe64.mlir --moe-train-pipeline="data-parallel=true eval=false decode-step=false" 2>/dev/null | moe-translate --moe-to-cuda -o %t.cu %}
// RUN: %if nvcc %{ %nvcc -std=c++17 -x cu -c %t.cu -I%moe_src_root -o %t.o %}
// `auto` holds its quarter rule for the global batch of
// sparse-gradient-ranks: 13 ranks touch more than a quarter of the
// softmax's rows (13 x 16384), 25 ranks of the embedding's (25 x 8192).
// The manifest gives the pool bytes of the summed rows per rank (R times
// them on each of R ranks: 16384 x (1 + 512 + 1) + 8192 x (1 + 512) floats).
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-train-pipeline="data-parallel=true eval=false decode-step=false" 2>/dev/null | moe-translate --moe-to-manifest | FileCheck %s --check-prefix=MANIFEST
// MANIFEST: "rank_rows_bytes": 50495488
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-train-pipeline="data-parallel=true eval=false decode-step=false sparse-gradient-ranks=13" 2>/dev/null | moe-translate --moe-to-cpp | FileCheck %s --check-prefix=RANKS13
// RUN: moe-opt %examples/lstm2x512_moe64.mlir --moe-train-pipeline="data-parallel=true eval=false decode-step=false sparse-gradient-ranks=25" 2>/dev/null | moe-translate --moe-to-cpp | FileCheck %s --check-prefix=RANKS25

// CHECK-LABEL: extern "C" void lstm2x512_moe64_train_step(
// CHECK-NOT: , 406257152, false);
// CHECK: moe::rt::step::RowSum [[SM:v[0-9]+]] = moe::rt::step::sumRowsOverRanks([[CTX:v[0-9]+]], {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}}, 16384, 512, 1, 793471);
// CHECK: moe::rt::step::RowIds [[SMROWS:v[0-9]+]] = moe::rt::step::part<moe::rt::step::RowIds>([[SM]], 0);
// CHECK: moe::rt::step::Rows [[SMW:v[0-9]+]] = moe::rt::step::part<moe::rt::step::Rows>([[SM]], 1);
// CHECK: moe::rt::step::Rows [[SMB:v[0-9]+]] = moe::rt::step::part<moe::rt::step::Rows>([[SM]], 2);
// CHECK: moe::rt::step::RowSum [[EMB:v[0-9]+]] = moe::rt::step::sumRowsOverRanks([[CTX]], {{v[0-9]+}}, {{v[0-9]+}}, nullptr, 8192, 512, 0, 793471);
// CHECK-NOT: , 406257152, false);
// CHECK: moe::rt::step::adamUpdateSummedRows([[CTX]], 512, {{v[0-9]+}}, {{v[0-9]+}}, {{v[0-9]+}},
// CHECK: moe::rt::step::adamUpdateSummedRows([[CTX]], 512, {{v[0-9]+}}, [[SMROWS]], [[SMW]],
// CHECK: moe::rt::step::adamUpdateSummedRows([[CTX]], 1, {{v[0-9]+}}, [[SMROWS]], [[SMB]],

// RANKS13: sumRowsOverRanks({{.*}}, nullptr, 8192, 512, 0, 793471);
// RANKS13-NOT: sumRowsOverRanks
// RANKS13: allReduce({{.*}}, 406257152, false);
// RANKS25-NOT: sumRowsOverRanks
// RANKS25-COUNT-2: allReduce({{.*}}, 406257152, false);
// RANKS25-NOT: sumRowsOverRanks
