// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 300
// RUN: %package %examples/tiny_moe.mlir %t/pkg 2>/dev/null
// RUN: moe-run train %t/pkg --data %t/corpus.txt --steps 4 --checkpoint-dir %t/ckpt -q

// Bad input gets one line naming what is wrong and a non-zero exit.
// RUN: not moe-run train %t/pkg --data %t/missing.txt 2>&1 | FileCheck %s --check-prefix=NODATA
// NODATA: moe-run: error: corpus {{.*}}missing.txt: cannot open
// RUN: not moe-run train %t/nowhere --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=NOPKG
// NOPKG: moe-run: error: package {{.*}}nowhere: no such directory
// RUN: mkdir -p %t/empty
// RUN: not moe-run train %t/empty --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=NOMANIFEST
// NOMANIFEST: moe-run: error: package {{.*}}empty: no manifest.json (write it with moe-translate --moe-to-manifest)
// RUN: mkdir -p %t/badjson && cp %t/pkg/step.cpp %t/badjson/ && echo '{"format": ' > %t/badjson/manifest.json
// RUN: not moe-run train %t/badjson --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BADJSON
// BADJSON: moe-run: error: {{.*}}badjson/manifest.json: malformed JSON
// RUN: mkdir -p %t/badrole && cp %t/pkg/step.cpp %t/badrole/ && sed '0,/"role": "input"/s//"role": "bogus"/' %t/pkg/manifest.json > %t/badrole/manifest.json
// RUN: not moe-run train %t/badrole --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BADROLE
// BADROLE: moe-run: error: {{.*}}badrole/manifest.json: functions.{{[a-z_]+}}.arguments[{{[0-9]+}}]: unknown role "bogus" (expected input, param or state)
// RUN: mkdir -p %t/badfunctions && cp %t/pkg/step.cpp %t/badfunctions/
// RUN: python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['functions']=[1,2]; json.dump(m,open(sys.argv[2],'w'))" %t/pkg/manifest.json %t/badfunctions/manifest.json
// RUN: not moe-run train %t/badfunctions --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BADFUNCTIONS
// BADFUNCTIONS: moe-run: error: {{.*}}badfunctions/manifest.json: "functions" must be an object (role: function)
// RUN: mkdir -p %t/badtype && cp %t/pkg/step.cpp %t/badtype/
// RUN: python3 -c "import json,sys; m=json.load(open(sys.argv[1])); a=[a for a in m['functions']['train_step']['arguments'] if a['role']=='input'][0]; a['id_bound']='many'; json.dump(m,open(sys.argv[2],'w'))" %t/pkg/manifest.json %t/badtype/manifest.json
// RUN: not moe-run train %t/badtype --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BADTYPE
// BADTYPE: moe-run: error: {{.*}}badtype/manifest.json: functions.train_step.arguments[{{[0-9]+}}]: "id_bound" has the wrong type

// Found by moe-package-fuzzer (scripts/fuzz.sh): a number too large for the
// JSON library, a float where an integer belongs (its conversion was
// undefined) and deep nesting are refused as well (huge shapes:
// package-plan.mlir).
// RUN: mkdir -p %t/badnumber && cp %t/pkg/step.cpp %t/badnumber/
// RUN: sed '0,/"flops": [0-9.e+]*/s//"flops": 1e3002/' %t/pkg/manifest.json > %t/badnumber/manifest.json
// RUN: not moe-run train %t/badnumber --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BADNUMBER
// BADNUMBER: moe-run: error: {{.*}}badnumber/manifest.json: malformed JSON ({{.*}}number overflow parsing '1e3002')
// RUN: mkdir -p %t/floatarena && cp %t/pkg/step.cpp %t/floatarena/
// RUN: python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['functions']['train_step']['arena_bytes']=1e300; json.dump(m,open(sys.argv[2],'w'))" %t/pkg/manifest.json %t/floatarena/manifest.json
// RUN: not moe-run train %t/floatarena --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=FLOATARENA
// FLOATARENA: moe-run: error: {{.*}}floatarena/manifest.json: functions.train_step: "arena_bytes" has the wrong type
// Nesting that overflowed the stack (moe-run crashed at 2M levels).
// RUN: mkdir -p %t/deep && cp %t/pkg/step.cpp %t/deep/
// RUN: python3 -c "import sys; open(sys.argv[1],'w').write('{\"functions\": ' + '[' * 2000000 + ']' * 2000000 + '}')" %t/deep/manifest.json
// RUN: not moe-run train %t/deep --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=DEEP
// DEEP: moe-run: error: {{.*}}deep/manifest.json: malformed JSON (nested deeper than 64 levels)
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --batch-tokens 64 2>&1 | FileCheck %s --check-prefix=BATCH
// BATCH: moe-run: error: --batch-tokens 64: the model was compiled for batches of 2 x 5 = 10 tokens
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --vocab-size 100 2>&1 | FileCheck %s --check-prefix=VOCAB
// VOCAB: moe-run: error: --vocab-size 100 exceeds the model's vocabulary of 50
// RUN: not moe-run train %t/pkg 2>&1 | FileCheck %s --check-prefix=USAGE
// USAGE: moe-run: error: --data is required (see --help)
// USAGE-NOT: {{.}}
// RUN: not moe-run train %t/pkg --data /dev/zero 2>&1 | FileCheck %s --check-prefix=ZERO
// ZERO: moe-run: error: corpus /dev/zero: not a text file (a NUL byte at offset 0)

// Counts are checked as they are parsed: none is negative or beyond int64.
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --steps 99999999999999999999 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: moe-run: error: --steps: value 99999999999999999999 does not fit in a 64-bit integer (see --help)
// HUGE-NOT: {{.}}
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --checkpoint-every -2 2>&1 | FileCheck %s --check-prefix=NEGEVERY
// NEGEVERY: moe-run: error: --checkpoint-every: value -2 is negative (see --help)
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --keep -1 2>&1 | FileCheck %s --check-prefix=NEGKEEP
// NEGKEEP: moe-run: error: --keep: value -1 is negative (see --help)
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --eval-batches -1 2>&1 | FileCheck %s --check-prefix=NEGEVAL
// NEGEVAL: moe-run: error: --eval-batches: value -1 is negative (see --help)
// RUN: not moe-run generate %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/step-00000004 --words -3 2>&1 | FileCheck %s --check-prefix=NEGWORDS
// NEGWORDS: moe-run: error: --words: value -3 is negative (see --help)

// A checkpoint of another vocabulary is refused.
// RUN: not moe-run eval %t/pkg --data %t/corpus.txt --vocab-size 20 --checkpoint %t/ckpt/step-00000004 2>&1 | FileCheck %s --check-prefix=OTHERVOCAB
// OTHERVOCAB: moe-run: error: checkpoint {{.*}}step-00000004 was trained with another vocabulary

// A corrupt or truncated checkpoint is never loaded.
// RUN: cp -r %t/ckpt/step-00000004 %t/flipped
// RUN: python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[-5]^=0xff; open(p,'wb').write(bytes(b))" %t/flipped/tensors.safetensors
// RUN: not moe-run eval %t/pkg --data %t/corpus.txt --checkpoint %t/flipped 2>&1 | FileCheck %s --check-prefix=FLIPPED
// FLIPPED: moe-run: error: checkpoint {{.*}}flipped: tensors.safetensors: SHA-256 mismatch
// RUN: cp -r %t/ckpt/step-00000004 %t/truncated
// RUN: truncate -s 100 %t/truncated/tensors.safetensors
// RUN: not moe-run train %t/pkg --data %t/corpus.txt --resume %t/truncated 2>&1 | FileCheck %s --check-prefix=TRUNCATED
// TRUNCATED: moe-run: error: checkpoint {{.*}}truncated: tensors.safetensors: truncated
// RUN: not moe-run eval %t/pkg --data %t/corpus.txt --checkpoint %t/ckpt/none 2>&1 | FileCheck %s --check-prefix=NOCKPT
// NOCKPT: moe-run: error: checkpoint {{.*}}none

// A source that does not compile reports the compiler's message.
// RUN: mkdir -p %t/broken && cp %t/pkg/manifest.json %t/broken/ && echo 'this is not C++' > %t/broken/step.cpp
// RUN: not moe-run train %t/broken --data %t/corpus.txt 2>&1 | FileCheck %s --check-prefix=BROKEN
// BROKEN: moe-run: error: compiling {{.*}}broken/step.cpp failed:
// BROKEN: error:
