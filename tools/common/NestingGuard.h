//===- NestingGuard.h - Bound the nesting depth of textual input -*- C++
//-*-===//
//
// MLIR's parser, verifier and printer recurse once per nested attribute,
// type or region, so input nested thousands deep overflows the stack
// (upstream mlir-opt 19 crashes the same way). The tools scan their input
// for bracket nesting before parsing and refuse it with a located error.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_COMMON_NESTINGGUARD_H
#define MOE_TOOLS_COMMON_NESTINGGUARD_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/LogicalResult.h"

namespace mlir::moe {

/// Deeper nesting of ( [ { < than this is refused.
constexpr unsigned kMaxInputNesting = 1000;

/// Reports `file:line:col: error:` at the bracket that opens level
/// `maxDepth + 1` of `filename` ("-": standard input, which is then put back
/// for the tool to read) and fails; succeeds when the input nests no deeper
/// or cannot be read (the tool reports that itself).
llvm::LogicalResult checkInputNesting(llvm::StringRef filename,
                                      unsigned maxDepth = kMaxInputNesting);

/// Whether textual input `text` nests deeper than `maxDepth`, as
/// checkInputNesting counts (bytecode never does): for callers that parse
/// from memory.
bool nestsTooDeep(llvm::StringRef text, unsigned maxDepth = kMaxInputNesting);

/// The input file of a tool whose only positional argument is its input:
/// the first argument that is neither an option nor the value of -o or of
/// a registered option that requires one; "-" when there is none.
llvm::StringRef findInputFilename(int argc, char **argv);

} // namespace mlir::moe

#endif // MOE_TOOLS_COMMON_NESTINGGUARD_H
