//===- NestingGuard.cpp - Bound the nesting depth of textual input --------===//

#include "tools/common/NestingGuard.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <unistd.h>

using namespace llvm;

/// The first bracket that opens level `maxDepth + 1`, skipping comments,
/// string literals and the `->`, `<=`, `>=` tokens; nullptr if none.
static const char *findTooDeep(StringRef text, unsigned maxDepth) {
  unsigned depth = 0;
  for (const char *p = text.begin(), *end = text.end(); p < end; ++p) {
    switch (*p) {
    case '/':
      if (p + 1 < end && p[1] == '/')
        while (p + 1 < end && *p != '\n')
          ++p;
      break;
    case '"':
      for (++p; p < end && *p != '"'; ++p)
        if (*p == '\\')
          ++p;
      break;
    case '-':
    case '=':
      if (p + 1 < end && p[1] == '>')
        ++p;
      break;
    case '(':
    case '[':
    case '{':
    case '<':
      if (*p == '<' && p + 1 < end && p[1] == '=')
        break;
      if (++depth > maxDepth)
        return p;
      break;
    case ')':
    case ']':
    case '}':
    case '>':
      if (*p == '>' && p + 1 < end && p[1] == '=')
        break;
      depth -= depth > 0;
      break;
    default:
      break;
    }
  }
  return nullptr;
}

/// Makes `text` the process's standard input again, through an unlinked
/// temporary file.
static void restoreStdin(StringRef text) {
  int fd;
  SmallString<128> path;
  if (sys::fs::createTemporaryFile("moe-stdin", "mlir", fd, path))
    return;
  raw_fd_ostream os(fd, /*shouldClose=*/false);
  os << text;
  os.flush();
  ::lseek(fd, 0, SEEK_SET);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  sys::fs::remove(path);
}

/// Bytecode has its own reader and no brackets to count.
static bool isBytecode(StringRef text) { return text.starts_with("ML\xEFR"); }

bool mlir::moe::nestsTooDeep(StringRef text, unsigned maxDepth) {
  return !isBytecode(text) && findTooDeep(text, maxDepth);
}

LogicalResult mlir::moe::checkInputNesting(StringRef filename,
                                           unsigned maxDepth) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> file =
      MemoryBuffer::getFileOrSTDIN(filename, /*IsText=*/false,
                                   /*RequiresNullTerminator=*/false);
  if (!file)
    return success();
  StringRef text = (*file)->getBuffer();
  if (filename == "-")
    restoreStdin(text);
  if (isBytecode(text))
    return success();
  const char *tooDeep = findTooDeep(text, maxDepth);
  if (!tooDeep)
    return success();
  SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(*file), SMLoc());
  sourceMgr.PrintMessage(
      SMLoc::getFromPointer(tooDeep), SourceMgr::DK_Error,
      "input nests brackets more than " + Twine(maxDepth) +
          " levels deep; parsing it would overflow the stack");
  return failure();
}

StringRef mlir::moe::findInputFilename(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    StringRef arg = argv[i];
    if (arg == "--")
      return i + 1 < argc ? StringRef(argv[i + 1]) : StringRef("-");
    if (arg == "-" || !arg.starts_with("-"))
      return arg;
    // `-o out.cpp`, `--gemm-precision bf16`: the next argument is a value.
    StringRef name = arg.ltrim('-');
    if (name == "o" || name.contains('=')) {
      i += name == "o";
      continue;
    }
    auto option = cl::getRegisteredOptions().find(name);
    if (option != cl::getRegisteredOptions().end() &&
        option->second->getValueExpectedFlag() == cl::ValueRequired)
      ++i;
  }
  return "-";
}
