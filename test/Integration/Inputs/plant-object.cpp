// A shared object that leaves a marker file when it is loaded:
// compile-cache.mlir plants it in the compile cache in place of a package.
#include <cstdio>
#include <cstdlib>

__attribute__((constructor)) static void plant() {
  if (const char *path = std::getenv("MOE_PLANT_MARKER"))
    if (std::FILE *marker = std::fopen(path, "w"))
      std::fclose(marker);
}
