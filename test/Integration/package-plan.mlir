// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 300
// RUN: %package %examples/tiny_moe.mlir %t/pkg 2>/dev/null

// moe-run sizes the arena and every argument's buffer from manifest.json
// and checks each against what the compiled code says of itself
// (<f>_arena_bytes, <f>_signature: types, shapes and which tensors are
// split over the ranks), so a manifest edited after moe-translate is a
// one-line error naming the file and the field, not memory the code
// writes past. Each edit below is to a copy of the package.
// RUN: python3 %S/Inputs/edit-manifest.py %t/pkg %t/arena arena_bytes
// RUN: not moe-run train %t/arena --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=ARENA
// ARENA: moe-run: error: package {{.*}}arena: manifest.json and {{.*}}step.cpp describe different code (tiny_moe_train_step: arena of {{[0-9]+}} bytes, 64 in the manifest); regenerate both from the same compiled module
// RUN: python3 %S/Inputs/edit-manifest.py %t/pkg %t/shape shape
// RUN: not moe-run train %t/shape --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=SHAPE
// SHAPE: moe-run: error: package {{.*}}shape: manifest.json and {{.*}}step.cpp describe different code (tiny_moe_train_step: functions.train_step.arguments[2] (embedding) is f32:51x8 in the manifest, f32:50x8 in the code); regenerate both from the same compiled module
// A tensor the plain package holds whole, marked as split over the ranks:
// each rank would allocate its share while the code writes all of it.
// RUN: python3 %S/Inputs/edit-manifest.py %t/pkg %t/shard shard
// RUN: not moe-run train %t/shard --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=SHARD
// SHARD: moe-run: error: package {{.*}}shard: manifest.json and {{.*}}step.cpp describe different code (tiny_moe_train_step: functions.train_step.arguments[8] (moe.expert_weights) is f32:4x8x8/shard in the manifest, f32:4x8x8 in the code); regenerate both from the same compiled module
// A size whose byte count would wrap is refused before anything is sized
// by it (the manifest is read before the code is compiled).
// RUN: python3 %S/Inputs/edit-manifest.py %t/pkg %t/huge huge
// RUN: not moe-run info %t/huge 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: moe-run: error: {{.*}}huge/manifest.json: functions.{{[a-z_]+}}.arguments[2].shape: a tensor of 2^60 bytes or more
