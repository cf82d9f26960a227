// REQUIRES: moe-run
// RUN: rm -rf %t && mkdir -p %t
// RUN: python3 %S/Inputs/make-corpus.py %t/corpus.txt --lines 100
// RUN: %package %examples/tiny_moe.mlir %t/pkg 2>/dev/null
// RUN: env MOE_RUN_CACHE=%t/cache moe-run train %t/pkg --data %t/corpus.txt --steps 1 -q

// Loading a cached object runs its code: the cache is private to the user
// and each object has the SHA-256 it was compiled with beside it.
// RUN: stat -c %%a %t/cache | FileCheck %s --check-prefix=MODE
// MODE: 700
// RUN: ls %t/cache | FileCheck %s --check-prefix=FILES
// FILES: {{^[0-9a-f]+}}.so{{$}}
// FILES-NEXT: {{^[0-9a-f]+}}.so.sha256{{$}}

// An object planted in its place (here one that leaves a marker when
// loaded) is never loaded: it is recompiled, with a wrong digest ...
// RUN: %cxx -shared -fPIC %S/Inputs/plant-object.cpp -o %t/planted.so
// RUN: sh -c 'for f in %t/cache/*.so; do cp %t/planted.so $f; done'
// RUN: env MOE_RUN_CACHE=%t/cache MOE_PLANT_MARKER=%t/marker moe-run train %t/pkg --data %t/corpus.txt --steps 1 -q 2>&1 | FileCheck %s --check-prefix=PLANTED
// PLANTED: moe-run: warning: cached {{.*}}cache/{{[0-9a-f]+}}.so does not match its recorded SHA-256; recompiling
// RUN: not test -e %t/marker
// ... or with none.
// RUN: sh -c 'for f in %t/cache/*.so; do cp %t/planted.so $f; rm $f.sha256; done'
// RUN: env MOE_RUN_CACHE=%t/cache MOE_PLANT_MARKER=%t/marker moe-run train %t/pkg --data %t/corpus.txt --steps 1 -q 2>&1 | FileCheck %s --check-prefix=PLANTED
// RUN: not test -e %t/marker

// A cache that others can write to, or a symbolic link, is refused.
// RUN: mkdir -p %t/shared && chmod 0775 %t/shared
// RUN: not env MOE_RUN_CACHE=%t/shared moe-run train %t/pkg --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=SHARED
// SHARED: moe-run: error: compile cache {{.*}}shared is writable by others (mode 0775): objects in it would be run; use a private directory (MOE_RUN_CACHE)
// RUN: ln -s %t/cache %t/link
// RUN: not env MOE_RUN_CACHE=%t/link/ moe-run train %t/pkg --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=LINK
// LINK: moe-run: error: compile cache {{.*}}link is a symbolic link: objects in it would be run
// RUN: touch %t/file
// RUN: not env MOE_RUN_CACHE=%t/file/cache moe-run train %t/pkg --data %t/corpus.txt --steps 1 2>&1 | FileCheck %s --check-prefix=NOCACHE
// NOCACHE: moe-run: error: cannot create the compile cache {{.*}}file/cache: Not a directory

// Without a home directory the cache is per user, not one shared
// /tmp/moe-run-cache (a source that does not compile ends the run early).
// RUN: mkdir -p %t/broken && cp %t/pkg/manifest.json %t/broken/ && echo 'not C++' > %t/broken/step.cpp
// RUN: not env -u HOME -u XDG_CACHE_HOME -u MOE_RUN_CACHE moe-run train %t/broken --data %t/corpus.txt -v 2>&1 | FileCheck %s --check-prefix=NOHOME
// NOHOME: -o '/tmp/moe-run-cache-{{[0-9]+}}/{{[0-9a-f]+}}.so.tmp.
