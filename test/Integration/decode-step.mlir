// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t

// Incremental decoding (moe-add-decode-step in the train pipeline): the
// package's decode_step, run one position at a time from the state encode
// returns (translation) or zero (language model), gives the evaluation
// function's logits at every position of the whole window.
// RUN: %package %examples/tiny_nmt.mlir %t/nmt 2>/dev/null
// RUN: moe-run check-decode-step %t/nmt -q | FileCheck %s --check-prefix=NMT
// NMT: decode_step: 5 positions x 3 sequences, vocabulary 30: largest |logit difference| {{.*}}: matches
// RUN: %package %examples/tiny_moe.mlir %t/lm 2>/dev/null
// RUN: moe-run check-decode-step %t/lm -q | FileCheck %s --check-prefix=LM
// LM: decode_step: 5 positions x 2 sequences, vocabulary 50: largest |logit difference| {{.*}}: matches

// The manifest describes both functions: the encoder output is state that
// encode starts and decode_step reads; the LSTM state is read and returned.
// RUN: python3 -c "import json,sys; f=json.load(open(sys.argv[1]))['functions']; [print(r, f[r]['symbol'], ' '.join(a['role'] + ':' + a['name'] + ':' + 'x'.join(map(str, a['shape'])) for a in f[r]['arguments'] if a['role'] != 'param'), '->', ' '.join(x['kind'] + ':' + x.get('name', '') for x in f[r]['results'])) for r in ('encode', 'decode_step')]" %t/nmt/manifest.json | FileCheck %s --check-prefix=MANIFEST
// MANIFEST: encode tiny_nmt_encode input:source:3x6 input:source_lengths:3 -> state:encoder_output
// MANIFEST-NEXT: decode_step tiny_nmt_decode_step input:source_lengths:3 input:tokens:3x1 state:encoder_output:3x6x8 state:decoder.lstm.hidden:3x8 state:decoder.lstm.cell:3x8 -> logits: state:decoder.lstm.hidden state:decoder.lstm.cell
// RUN: python3 -c "import json,sys; print(sorted(json.load(open(sys.argv[1]))['functions']))" %t/lm/manifest.json | FileCheck %s --check-prefix=LMROLES
// LMROLES: ['decode_step', 'eval', 'model', 'train_step']
