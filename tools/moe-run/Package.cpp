//===- Package.cpp - Manifest validation, compile cache, loading ----------===//
//
// The compiled object is cached under $MOE_RUN_CACHE (default
// ~/.cache/moe-run) by the SHA-256 of the source, the compile command and
// the runtime's ABI headers (kAbiHeaders), so a package compiles once per
// machine and a changed runtime recompiles it. The object is written to a
// temporary name and renamed, so ranks that compile at the same time never
// load a torn file. Loading a cached object runs its code, so the cache
// must be private to the user (checked every time) and the object must
// match the SHA-256 recorded beside it when it was compiled.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Package.h"

#include "runtime/checkpoint/Safetensors.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace moe::run {

namespace {

[[noreturn]] void fail(const std::string &message) {
  throw std::runtime_error(message);
}

bool exists(const std::string &path) {
  return std::filesystem::exists(path);
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string sha256Hex(const std::string &bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(),
                  nullptr))
    fail("SHA-256 failed");
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string cacheDirectory() {
  if (const char *dir = std::getenv("MOE_RUN_CACHE"))
    return dir;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"))
    return std::string(xdg) + "/moe-run";
  if (const char *home = std::getenv("HOME"))
    return std::string(home) + "/.cache/moe-run";
  // Not one shared directory: another user could plant objects in it.
  return "/tmp/moe-run-cache-" + std::to_string(::geteuid());
}

/// Creates the cache directory `dir` private (mode 0700), or checks that
/// it is: a directory (not a symbolic link) of this user that nobody else
/// can write to, since the objects in it are loaded and run.
void makePrivateDirectory(std::string dir) {
  // "link/" would make lstat follow the link.
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  int made = ::mkdir(dir.c_str(), 0700) == 0 ? 0 : errno;
  if (made == ENOENT) {
    std::error_code ec;
    std::filesystem::create_directories(
        std::filesystem::path(dir).parent_path(), ec);
    made = ::mkdir(dir.c_str(), 0700) == 0 ? 0 : errno;
  }
  auto refuse = [&](const std::string &why) {
    fail("compile cache " + dir + " " + why +
         ": objects in it would be run; use a private directory "
         "(MOE_RUN_CACHE)");
  };
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0)
    fail("cannot create the compile cache " + dir + ": " +
         std::strerror(made ? made : errno));
  if (S_ISLNK(st.st_mode))
    refuse("is a symbolic link");
  if (!S_ISDIR(st.st_mode))
    refuse("is not a directory");
  if (st.st_uid != ::geteuid())
    refuse("belongs to uid " + std::to_string(st.st_uid) + ", not to you");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    refuse(std::string("is writable by others (mode ") + mode + ")");
  }
}

/// Whether `object` is what this cache compiled: the SHA-256 recorded in
/// `digestPath` when it was written.
bool matchesDigest(const std::string &object, const std::string &digestPath) {
  std::ifstream in(digestPath);
  std::string recorded;
  return in >> recorded && recorded == sha256Hex(readFile(object));
}

/// Writes `text` to `path` by a rename, so a reader never sees half of it.
void writeAtomically(const std::string &path, const std::string &text) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text << "\n";
    if (!out.flush())
      fail("cannot write " + temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
}

/// Runs `command`, returning its exit status and combined output.
int runCommand(const std::string &command, std::string &output) {
  FILE *pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe)
    fail("cannot run: " + command);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    output.append(buffer, n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string quote(const std::string &text) {
  std::string out = "'";
  for (char c : text)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The runtime headers that generated code compiles against, under the
/// include directory: a change to any of them must recompile the cached
/// packages. Kernels.def, the kernel table that Backend.h and Step.h
/// include, is skipped where the runtime does not have it yet.
struct AbiHeader {
  const char *path;
  bool optional;
};
constexpr AbiHeader kAbiHeaders[] = {{"runtime/step/Step.h", false},
                                     {"runtime/Backend.h", false},
                                     {"runtime/Kernels.def", true}};

/// The ABI headers' text, in kAbiHeaders order.
std::string abiText(const std::string &includeDir) {
  std::string text;
  for (const AbiHeader &header : kAbiHeaders) {
    std::string path = includeDir + "/" + header.path;
    if (!header.optional || exists(path))
      text += readFile(path);
  }
  return text;
}

/// The comma-separated entries of a compiled function's signature.
std::vector<std::string> splitSignature(const std::string &signature) {
  std::vector<std::string> entries;
  if (signature.empty())
    return entries;
  size_t begin = 0;
  for (;;) {
    size_t comma = signature.find(',', begin);
    entries.push_back(signature.substr(begin, comma - begin));
    if (comma == std::string::npos)
      return entries;
    begin = comma + 1;
  }
}

/// Whether `value` converts to T as the manifest means it: an integer field
/// must hold an integer (a float such as 1e300 would convert to one with
/// undefined behaviour), a shape an array of them. The JSON library checks
/// the other types itself.
template <typename T> bool hasType(const nlohmann::json &value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    return value.is_number_integer();
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return value.is_array() &&
           std::all_of(value.begin(), value.end(), [](const nlohmann::json &d) {
             return d.is_number_integer();
           });
  } else {
    return true;
  }
}

template <typename T>
T field(const nlohmann::json &object, const char *key,
        const std::string &where) {
  if (!object.is_object() || !object.contains(key))
    fail(where + ": missing \"" + key + "\"");
  const nlohmann::json &value = object.at(key);
  try {
    if (hasType<T>(value))
      return value.get<T>();
  } catch (const nlohmann::json::exception &) {
  }
  fail(where + ": \"" + key + "\" has the wrong type");
}

/// field(object, key, where), or `fallback` when the key is absent.
template <typename T>
T optionalField(const nlohmann::json &object, const char *key,
                const std::string &where, T fallback) {
  return object.is_object() && object.contains(key)
             ? field<T>(object, key, where)
             : fallback;
}

/// A manifest nests 5 deep; deeper is refused before the JSON library,
/// which copies values recursively, could overflow the stack.
constexpr int kMaxManifestDepth = 64;

/// The manifest's spellings of the enums of Package.h, in enumerator order.
constexpr const char *kArgumentRoles[] = {"input", "param", "state"};
constexpr const char *kResultKinds[] = {"loss",  "lr",   "param",
                                        "state", "grad", "logits"};
constexpr const char *kInitKinds[] = {"zeros", "constant", "normal", "uniform",
                                      "glorot_uniform"};

/// The enumerator whose spelling in `names` is object[key]; an unknown
/// spelling fails naming `where` (the manifest file and the entry), `what`
/// it should have been and the known spellings.
template <typename Enum, size_t N>
Enum enumField(const nlohmann::json &object, const char *key,
               const std::string &where, const char *what,
               const char *const (&names)[N]) {
  std::string name = field<std::string>(object, key, where), known;
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i])
      return static_cast<Enum>(i);
    known += (i == 0 ? "" : i + 1 == N ? " or " : ", ");
    known += names[i];
  }
  fail(where + ": unknown " + what + " \"" + name + "\" (expected " + known +
       ")");
}

FunctionInfo parseFunction(const nlohmann::json &json,
                           const std::string &where) {
  FunctionInfo info;
  info.symbol = field<std::string>(json, "symbol", where);
  info.arenaBytes = field<int64_t>(json, "arena_bytes", where);
  info.flops = field<double>(json, "flops", where);
  if (info.arenaBytes < 0)
    fail(where + ": negative arena_bytes");
  info.rankRowsBytes =
      optionalField<int64_t>(json, "rank_rows_bytes", where, 0);
  if (info.rankRowsBytes < 0)
    fail(where + ": negative rank_rows_bytes");
  auto arguments = field<nlohmann::json>(json, "arguments", where);
  if (!arguments.is_array())
    fail(where + ": arguments must be an array");
  for (size_t i = 0; i < arguments.size(); ++i) {
    std::string at = where + ".arguments[" + std::to_string(i) + "]";
    const nlohmann::json &a = arguments[i];
    ArgumentInfo arg;
    arg.role = enumField<ArgumentRole>(a, "role", at, "role", kArgumentRoles);
    arg.name = field<std::string>(a, "name", at);
    arg.dtype = field<std::string>(a, "dtype", at);
    arg.shape = field<std::vector<int64_t>>(a, "shape", at);
    if (field<int64_t>(a, "index", at) != static_cast<int64_t>(i))
      fail(at + ": arguments must be listed in order");
    if (arg.dtype != "f32" && arg.dtype != "i32" && arg.dtype != "i64")
      fail(at + ": unsupported dtype " + arg.dtype);
    // Buffers are allocated by these sizes: as in the compiler, no tensor
    // reaches 2^60 bytes, so the byte counts cannot wrap.
    int64_t bytes = arg.dtype == "i64" ? 8 : 4;
    for (int64_t d : arg.shape)
      if (d < 0)
        fail(at + ": negative dimension");
      else if (__builtin_mul_overflow(bytes, d, &bytes) || bytes >= (1LL << 60))
        fail(at + ".shape: a tensor of 2^60 bytes or more");
    if (arg.role == ArgumentRole::Input) {
      arg.idBound = optionalField<int64_t>(a, "id_bound", at, 0);
      arg.allowsPadding = optionalField<bool>(a, "padding", at, false);
      if (a.contains("length_range")) {
        auto range = field<std::vector<int64_t>>(a, "length_range", at);
        if (range.size() != 2 || range[0] != 1 || range[1] < 1 ||
            arg.shape.size() != 1)
          fail(at + ".length_range: expected [1, positions] for lengths of "
                    "shape [batch]");
        arg.maxLength = range[1];
        arg.pads = field<std::vector<std::string>>(a, "pads", at);
      }
    } else if (arg.role == ArgumentRole::Param) {
      auto init = field<nlohmann::json>(a, "init", at);
      arg.init = enumField<InitKind>(init, "kind", at + ".init", "initializer",
                                     kInitKinds);
      arg.initScale = field<double>(init, "scale", at + ".init");
    }
    if (a.contains("shard")) {
      std::string shardAt = at + ".shard";
      if (arg.role == ArgumentRole::Input)
        fail(shardAt + ": inputs cannot be sharded");
      auto shard = field<nlohmann::json>(a, "shard", at);
      std::string mesh = field<std::string>(shard, "mesh", shardAt);
      int64_t dim = field<int64_t>(shard, "dim", shardAt);
      if (mesh != "ranks")
        fail(shardAt + ": unknown mesh \"" + mesh + "\" (expected \"ranks\")");
      if (dim != 0)
        fail(shardAt + ": only dim 0 can be split over the ranks, not dim " +
             std::to_string(dim));
      if (arg.shape.empty())
        fail(shardAt + ": a 0-d tensor cannot be split over the ranks");
      arg.sharded = true;
    }
    info.arguments.push_back(std::move(arg));
  }
  auto results = field<nlohmann::json>(json, "results", where);
  if (!results.is_array() || !arguments.is_array())
    fail(where + ": arguments and results must be arrays");
  for (size_t i = 0; i < results.size(); ++i) {
    std::string at = where + ".results[" + std::to_string(i) + "]";
    const nlohmann::json &r = results[i];
    ResultInfo result{
        enumField<ResultKind>(r, "kind", at, "result kind", kResultKinds),
        optionalField<std::string>(r, "name", at, "")};
    bool named = result.kind != ResultKind::Loss &&
                 result.kind != ResultKind::Lr &&
                 result.kind != ResultKind::Logits;
    // A function without state arguments may start state (an encoder's
    // outputs, which decode steps then read).
    bool startsState = result.kind == ResultKind::State &&
                       std::none_of(info.arguments.begin(),
                                    info.arguments.end(), [](const auto &arg) {
                                      return arg.role == ArgumentRole::State;
                                    });
    if (named && !startsState) {
      bool found = false;
      for (const ArgumentInfo &arg : info.arguments)
        found |= arg.name == result.name && arg.role != ArgumentRole::Input;
      if (!found)
        fail(at + ": result '" + result.name +
             "' names no parameter or state argument");
    }
    info.results.push_back(std::move(result));
  }
  auto plans = field<nlohmann::json>(json, "dispatch_plans", where);
  if (!plans.is_array())
    fail(where + ": dispatch_plans must be an array");
  for (const nlohmann::json &p : plans) {
    info.planExperts.push_back(field<int64_t>(p, "experts", where));
    // Manifests written before routing captures have no level: experts.
    std::string level =
        optionalField<std::string>(p, "level", where, "experts");
    if (level != "experts" && level != "groups")
      fail(where + ": a dispatch plan's \"level\" must be \"experts\" or "
                   "\"groups\", not \"" +
           level + "\"");
    info.planRoutesGroups.push_back(level == "groups");
  }
  return info;
}

} // namespace

int64_t ArgumentInfo::elements() const {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  return count;
}

size_t ArgumentInfo::bytes() const {
  return static_cast<size_t>(elements()) * (dtype == "i64" ? 8 : 4);
}

std::vector<int64_t> ArgumentInfo::localShape(int ranks) const {
  if (!sharded || ranks == 1)
    return shape;
  int64_t n = shape[0];
  if (ranks < 1 || n % ranks != 0)
    fail(name + ": " + std::to_string(n) + " experts cannot be split over " +
         std::to_string(ranks) +
         " ranks; run with a number of ranks that divides " +
         std::to_string(n));
  std::vector<int64_t> local = shape;
  local[0] = n / ranks;
  return local;
}

int64_t ArgumentInfo::localElements(int ranks) const {
  int64_t count = 1;
  for (int64_t d : localShape(ranks))
    count *= d;
  return count;
}

size_t ArgumentInfo::localBytes(int ranks) const {
  return static_cast<size_t>(localElements(ranks)) * (dtype == "i64" ? 8 : 4);
}

const ArgumentInfo *FunctionInfo::input(const std::string &name) const {
  for (const ArgumentInfo &arg : arguments)
    if (arg.role == ArgumentRole::Input && arg.name == name)
      return &arg;
  return nullptr;
}

int FunctionInfo::resultIndex(ResultKind kind, const std::string &name) const {
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].kind == kind && (name.empty() || results[i].name == name))
      return static_cast<int>(i);
  return -1;
}

Package Package::open(const std::string &dir) {
  std::string manifestPath = dir + "/manifest.json";
  if (!exists(dir))
    fail("package " + dir + ": no such directory");
  if (!exists(manifestPath))
    fail("package " + dir + ": no manifest.json (write it with "
         "moe-translate --moe-to-manifest)");
  Package package = parseManifest(readFile(manifestPath), manifestPath);
  package.dir = dir;
  if (exists(dir + "/step.cu")) {
    package.sourcePath = dir + "/step.cu";
    package.sourceTarget = "cuda";
  } else if (exists(dir + "/step.cpp")) {
    package.sourcePath = dir + "/step.cpp";
    package.sourceTarget = "cpu";
  } else {
    fail("package " + dir +
         ": no step.cpp or step.cu (write it with "
         "moe-translate --moe-to-cpp or --moe-to-cuda)");
  }
  return package;
}

Package Package::parseManifest(const std::string &text,
                               const std::string &manifestPath) {
  Package package;
  nlohmann::json manifest;
  std::string error;
  if (!rt::parseJsonStrict(text, kMaxManifestDepth, manifest, error))
    fail(manifestPath + ": malformed JSON (" + error + ")");
  std::string format = field<std::string>(manifest, "format", manifestPath);
  if (format != "moe-package/2")
    fail(manifestPath + ": format " + format +
         " is not moe-package/2 (recompile the model)");
  package.modelName = field<std::string>(manifest, "model", manifestPath);
  package.optimizer = field<std::string>(manifest, "optimizer", manifestPath);
  package.noDecodeStep =
      optionalField<std::string>(manifest, "no_decode_step", manifestPath, "");
  auto functions = field<nlohmann::json>(manifest, "functions", manifestPath);
  if (!functions.is_object())
    fail(manifestPath + ": \"functions\" must be an object (role: function)");
  try {
    for (auto it = functions.begin(); it != functions.end(); ++it)
      package.functions[it.key()] =
          parseFunction(it.value(), manifestPath + ": functions." + it.key());
  } catch (const nlohmann::json::exception &e) {
    // A value the checks above let through to the JSON library.
    fail(manifestPath + ": a field has the wrong type (" + e.what() + ")");
  }
  if (!package.functions.count("train_step"))
    fail(manifestPath + ": no train_step function");
  return package;
}

void Package::load(bool verbose, bool progress) {
  std::string includeDir = MOE_RUN_INCLUDE_DIR, libraryDir =
                                                   MOE_RUN_LIBRARY_DIR;
  if (const char *root = std::getenv("MOE_RUN_INCLUDE_DIR"))
    includeDir = root;
  if (const char *lib = std::getenv("MOE_RUN_LIBRARY_DIR"))
    libraryDir = lib;
  std::string compiler;
  std::string flags;
  if (sourceTarget == "cuda") {
    compiler = MOE_RUN_NVCC;
    if (compiler.empty())
      fail("package " + dir + " is a CUDA package (step.cu) but this moe-run "
           "was built without CUDA");
    flags = "-std=c++17 -O2 -x cu -shared -Xcompiler -fPIC";
  } else {
    compiler = MOE_RUN_CXX;
    if (const char *cxx = std::getenv("CXX"))
      compiler = cxx;
    flags = "-std=c++17 -O2 -fPIC -shared";
  }
  std::string source = readFile(sourcePath);
  std::string abi = abiText(includeDir);
  // nvcc passes linker flags with -Xlinker, not -Wl.
  std::string rpath = sourceTarget == "cuda"
                          ? " -Xlinker -rpath -Xlinker " + quote(libraryDir)
                          : " -Wl,-rpath," + quote(libraryDir);
  std::string command = quote(compiler) + " " + flags + " -I" +
                        quote(includeDir) + " " + quote(sourcePath) +
                        " -L" + quote(libraryDir) + " -lmoe_rt" + rpath;
  std::string key = sha256Hex(source + "\n" + compiler + " " + flags + "\n" +
                              includeDir + "\n" + libraryDir + "\n" + abi);
  std::string cache = cacheDirectory();
  makePrivateDirectory(cache);
  std::string object = cache + "/" + key.substr(0, 32) + ".so";
  std::string digest = object + ".sha256";
  if (exists(object) && !matchesDigest(object, digest)) {
    std::fprintf(stderr,
                 "moe-run: warning: cached %s does not match its recorded "
                 "SHA-256; recompiling\n",
                 object.c_str());
    ::unlink(object.c_str());
    ::unlink(digest.c_str());
  }
  if (!exists(object)) {
    std::string temp = object + ".tmp." + std::to_string(::getpid());
    std::string full = command + " -o " + quote(temp);
    if (verbose)
      std::cerr << "moe-run: compiling " << sourcePath << "\n  " << full
                << "\n";
    else if (progress)
      // Seconds of the C++ compiler (nvcc: more) before anything else.
      std::cerr << "moe-run: compiling " << sourcePath
                << " (first run; cached afterwards)..." << std::endl;
    auto start = std::chrono::steady_clock::now();
    std::string output;
    if (runCommand(full, output) != 0) {
      ::unlink(temp.c_str());
      fail("compiling " + sourcePath + " failed:\n" + output);
    }
    if (verbose || progress)
      std::fprintf(stderr, "moe-run: compiled in %.1f s\n",
                   std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count());
    // The digest first: an object never lies in the cache without one.
    writeAtomically(digest, sha256Hex(readFile(temp)));
    if (::rename(temp.c_str(), object.c_str()) != 0)
      fail("cannot move the compiled package into " + cache + ": " +
           std::strerror(errno));
  } else if (verbose) {
    std::cerr << "moe-run: using cached " << object << "\n";
  }
  library = ::dlopen(object.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library)
    fail("cannot load " + object + ": " + ::dlerror());
  auto mismatch = [&](const FunctionInfo &info, const std::string &what) {
    fail("package " + dir + ": manifest.json and " + sourcePath +
         " describe different code (" + info.symbol + ": " + what +
         "); regenerate both from the same compiled module");
  };
  for (auto &[role, info] : functions) {
    void *symbol = ::dlsym(library, info.symbol.c_str());
    auto arena = reinterpret_cast<int64_t (*)()>(
        ::dlsym(library, (info.symbol + "_arena_bytes").c_str()));
    auto signature = reinterpret_cast<const char *(*)()>(
        ::dlsym(library, (info.symbol + "_signature").c_str()));
    if (!symbol || !arena || !signature)
      mismatch(info, "no such function in the source");
    // The arena and argument buffers are sized from the manifest: it must
    // be this code's.
    if (arena() != info.arenaBytes)
      mismatch(info, "arena of " + std::to_string(arena()) + " bytes, " +
                         std::to_string(info.arenaBytes) + " in the manifest");
    // The buffers are sized by the manifest's types and shard flags; each
    // must be the code's (ConvertMoEToEmitC's argumentSignature).
    std::vector<std::string> code = splitSignature(signature());
    if (code.size() != info.arguments.size())
      mismatch(info, std::to_string(info.arguments.size()) +
                         " arguments in the manifest, " +
                         std::to_string(code.size()) + " in the code");
    for (size_t i = 0; i < info.arguments.size(); ++i) {
      const ArgumentInfo &arg = info.arguments[i];
      std::string expected = arg.dtype + ":";
      for (size_t d = 0; d < arg.shape.size(); ++d)
        expected += (d ? "x" : "") + std::to_string(arg.shape[d]);
      if (arg.sharded)
        expected += "/shard";
      if (expected != code[i])
        mismatch(info, "functions." + role + ".arguments[" + std::to_string(i) +
                           "] (" + arg.name + ") is " + expected +
                           " in the manifest, " + code[i] + " in the code");
    }
    info.entry = reinterpret_cast<rt::step::CompiledFunction>(symbol);
  }
}

const FunctionInfo *Package::function(const std::string &role) const {
  auto it = functions.find(role);
  return it == functions.end() ? nullptr : &it->second;
}

std::string Package::evaluationFunction() const {
  return function("eval") ? "eval" : "model";
}

std::vector<const ArgumentInfo *> Package::trainableState() const {
  std::vector<const ArgumentInfo *> state;
  for (const ArgumentInfo &arg : functions.at("train_step").arguments)
    if (arg.role != ArgumentRole::Input)
      state.push_back(&arg);
  return state;
}

bool Package::hasShardedTensors() const {
  for (const auto &[role, info] : functions)
    for (const ArgumentInfo &arg : info.arguments)
      if (arg.sharded)
        return true;
  return false;
}

} // namespace moe::run
