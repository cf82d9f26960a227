//===- Session.cpp - Parameters, initializers and function calls ----------===//
//
// Initial values are a pure function of (seed, parameter name, global
// element index), so a run is reproducible on any backend or rank count and
// an expert shard starts as its slice of the global tensor. A call copies the
// inputs in, runs the compiled function, and copies the scalar results and
// statistics out; parameters and moments are updated in place by Adam (a
// result that is not the argument's own buffer is copied back).
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Session.h"

#include "runtime/Fnv1a.h"
#include "runtime/Philox.h"
#include "runtime/collectives/Collectives.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace moe::run {

namespace {

std::string checkpointDtype(const std::string &dtype) {
  return dtype == "f32" ? "F32" : dtype == "i32" ? "I32" : "I64";
}

/// Shards are gathered through backend memory in chunks of this many bytes
/// (over all ranks), so a save needs little memory beyond the shards.
constexpr size_t kGatherBytes = size_t(256) << 20;

/// Initializations of this many parameters or more are announced (about a
/// second on one CPU core before they ran on the backend).
constexpr int64_t kAnnouncedParameters = int64_t(100) << 20;

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// The bound of a uniform or Glorot initializer: the fans of the last two
/// dimensions, per expert for [n, d_in, d_out] (global shape; a shard
/// keeps them).
double uniformBound(const ArgumentInfo &param) {
  double scale = param.initScale;
  if (param.init != InitKind::GlorotUniform)
    return scale;
  size_t rank = param.shape.size();
  double fanIn =
      rank >= 2 ? param.shape[rank - 2] : (rank == 1 ? param.shape[0] : 1);
  double fanOut = rank >= 1 ? param.shape[rank - 1] : 1;
  return (scale == 0 ? 1.0 : scale) * std::sqrt(6.0 / (fanIn + fanOut));
}

/// Writes the elements [begin, begin + count) of a parameter's global
/// tensor from its initializer into `x` (backend memory): on the backend
/// (fill, initUniform: no host copy of the values), normals on the host.
void initializeParameter(rt::Backend &backend, const ArgumentInfo &param,
                         uint64_t seed, int64_t begin, int64_t count,
                         float *x) {
  uint64_t stream = rt::fnv1a(param.name);
  switch (param.init) {
  case InitKind::Zeros:
    backend.fill(x, 0.0f, count);
    return;
  case InitKind::Constant:
    backend.fill(x, static_cast<float>(param.initScale), count);
    return;
  case InitKind::Uniform:
  case InitKind::GlorotUniform:
    backend.initUniform(x, count, uniformBound(param), seed, stream,
                        static_cast<uint64_t>(begin));
    return;
  case InitKind::Normal: {
    // libm's logf/sinf differ by ulps between host and device: drawn here.
    std::vector<float> values(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i)
      values[i] = static_cast<float>(
          param.initScale *
          rt::philoxNormalAt(seed, stream, static_cast<uint64_t>(begin + i)));
    backend.copyFromHost(x, values.data(), values.size() * sizeof(float));
    return;
  }
  }
}

} // namespace

/// The arena, input buffers and context of one compiled function.
struct Session::FunctionState {
  const FunctionInfo *info = nullptr;
  std::unique_ptr<rt::step::Context> context;
  std::map<std::string, void *> inputs;
  void *arena = nullptr;
};

Session::Session(const Package &package, std::unique_ptr<rt::Backend> backend,
                 rt::Collectives *collectives)
    : package(package), backend_(std::move(backend)),
      collectives_(collectives) {
  for (const char *role : {"train_step", "eval", "model"}) {
    const FunctionInfo *info = package.function(role);
    if (!info)
      continue;
    for (const ArgumentInfo &arg : info->arguments) {
      if (arg.role == ArgumentRole::Input)
        continue;
      auto it = buffers.find(arg.name);
      if (it != buffers.end()) {
        if (it->second.first.shape != arg.shape ||
            it->second.first.dtype != arg.dtype)
          throw std::runtime_error("package " + package.directory() + ": " +
                                   arg.name +
                                   " has different shapes in its functions");
        if (it->second.first.sharded != arg.sharded)
          throw std::runtime_error("package " + package.directory() + ": " +
                                   arg.name +
                                   " is sharded in some functions only");
        continue;
      }
      buffers.emplace(arg.name, std::make_pair(arg, nullptr));
    }
  }
  // No destructor runs when a constructor throws.
  try {
    for (auto &[name, entry] : buffers)
      if (!entry.first.sharded)
        entry.second = backend_->alloc(entry.first.bytes());
    allocateShards(ranks());
  } catch (...) {
    for (auto &[name, entry] : buffers)
      backend_->release(entry.second);
    throw;
  }
}

void Session::allocateShards(int ranks) {
  // Every size first: a dim 0 that does not divide fails before anything
  // changes.
  std::vector<std::pair<void **, size_t>> shards;
  for (auto &[name, entry] : buffers)
    if (entry.first.sharded)
      shards.emplace_back(&entry.second, entry.first.localBytes(ranks));
  std::vector<void *> fresh;
  try {
    for (const auto &shard : shards)
      fresh.push_back(backend_->alloc(shard.second));
  } catch (...) {
    for (void *ptr : fresh)
      backend_->release(ptr);
    throw;
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    backend_->release(*shards[i].first);
    *shards[i].first = fresh[i];
  }
  // Functions already prepared point at the old buffers.
  for (auto &[role, fs] : functions)
    for (size_t i = 0; i < fs->info->arguments.size(); ++i) {
      const ArgumentInfo &arg = fs->info->arguments[i];
      if (arg.role != ArgumentRole::Input)
        fs->context->arguments[i] = buffers.at(arg.name).second;
    }
}

size_t Session::localBytes(const ArgumentInfo &arg) const {
  return arg.localBytes(ranks());
}

Session::~Session() {
  for (auto &[role, fs] : functions) {
    fs->context.reset();
    backend_->release(fs->arena);
    for (auto &[name, ptr] : fs->inputs)
      backend_->release(ptr);
  }
  functions.clear();
  for (auto &[name, entry] : buffers)
    backend_->release(entry.second);
  for (auto &[name, entry] : decodingState)
    backend_->release(entry.second);
}

void *Session::decodingBuffer(const ArgumentInfo &arg) {
  auto it = decodingState.find(arg.name);
  if (it != decodingState.end()) {
    if (it->second.first.shape != arg.shape ||
        it->second.first.dtype != arg.dtype)
      throw std::runtime_error("package " + package.directory() +
                               ": decoding state " + arg.name +
                               " has different shapes in its functions");
    return it->second.second;
  }
  void *ptr = backend_->alloc(arg.bytes());
  std::vector<uint8_t> zeros(arg.bytes(), 0);
  backend_->copyFromHost(ptr, zeros.data(), zeros.size());
  decodingState.emplace(arg.name, std::make_pair(arg, ptr));
  return ptr;
}

void Session::resetDecodingState() {
  for (auto &[name, entry] : decodingState) {
    std::vector<uint8_t> zeros(entry.first.bytes(), 0);
    backend_->copyFromHost(entry.second, zeros.data(), zeros.size());
  }
}

void Session::gatherDecodingState(const std::string &role,
                                  const std::vector<int64_t> &rows) {
  const FunctionInfo &info = *state(role).info;
  for (const ResultInfo &result : info.results) {
    auto it = decodingState.find(result.name);
    if (result.kind != ResultKind::State || it == decodingState.end())
      continue;
    const ArgumentInfo &arg = it->second.first;
    int64_t batch = arg.shape.empty() ? 0 : arg.shape[0];
    if (static_cast<int64_t>(rows.size()) != batch)
      throw std::logic_error(
          "gatherDecodingState: " + std::to_string(rows.size()) + " rows for " +
          arg.name + "'s " + std::to_string(batch));
    // One round trip through the host: a few small rows per step.
    size_t rowBytes = arg.bytes() / static_cast<size_t>(batch);
    std::vector<uint8_t> old(arg.bytes()), gathered(arg.bytes());
    backend_->copyToHost(old.data(), it->second.second, old.size());
    for (int64_t i = 0; i < batch; ++i) {
      if (rows[i] < 0 || rows[i] >= batch)
        throw std::logic_error("gatherDecodingState: row out of range");
      std::copy_n(old.begin() + rows[i] * rowBytes, rowBytes,
                  gathered.begin() + i * rowBytes);
    }
    backend_->copyFromHost(it->second.second, gathered.data(), gathered.size());
  }
}

std::vector<float>
Session::callForLogits(const std::string &role,
                       const std::map<std::string, const int32_t *> &inputs) {
  call(role, inputs, /*step=*/1, /*training=*/false, /*collectStats=*/false);
  const FunctionInfo &info = *state(role).info;
  int index = info.resultIndex(ResultKind::Logits);
  if (index < 0)
    throw std::runtime_error(info.symbol + " returns no logits");
  // The manifest gives results no shape: [batch, vocab], the batch and
  // vocabulary of the next-token input (the softmax scores the ids it
  // embeds).
  const ArgumentInfo *tokens = info.input("tokens");
  if (!tokens || tokens->shape.empty() || tokens->idBound < 1)
    throw std::runtime_error(info.symbol + " has no 'tokens' input");
  std::vector<float> logits(
      static_cast<size_t>(tokens->shape[0] * tokens->idBound));
  backend_->copyToHost(logits.data(), resultPointer(role, index),
                       logits.size() * sizeof(float));
  return logits;
}

void Session::initialize(uint64_t seed, bool progress) {
  seed_ = seed;
  int64_t parameters = 0;
  for (const auto &[name, entry] : buffers)
    if (entry.first.role == ArgumentRole::Param)
      parameters += entry.first.localElements(ranks());
  // A billion parameters take seconds even at memory speed: say so.
  bool announce = progress && parameters >= kAnnouncedParameters;
  auto start = std::chrono::steady_clock::now();
  if (announce)
    std::printf("initializing %.2fB parameters on %s...\n", parameters / 1e9,
                backend_->name().c_str());
  for (auto &[name, entry] : buffers) {
    const ArgumentInfo &arg = entry.first;
    int64_t count = arg.localElements(ranks());
    if (arg.role == ArgumentRole::Param) {
      initializeParameter(*backend_, arg, seed,
                          arg.sharded ? rank() * count : 0, count,
                          static_cast<float *>(entry.second));
    } else if (arg.dtype == "f32") {
      backend_->fill(static_cast<float *>(entry.second), 0.0f, count);
    } else {
      std::vector<uint8_t> zeros(localBytes(arg), 0);
      backend_->copyFromHost(entry.second, zeros.data(), zeros.size());
    }
  }
  backend_->synchronize();
  if (announce)
    std::printf(
        "initialized in %.1f s\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
}

Session::FunctionState &Session::state(const std::string &role) {
  auto it = functions.find(role);
  if (it != functions.end())
    return *it->second;
  const FunctionInfo *info = package.function(role);
  if (!info)
    throw std::runtime_error("package " + package.directory() + " has no " +
                             role + " function");
  if (!info->entry)
    throw std::runtime_error("package " + package.directory() +
                             " is not loaded");
  auto fs = std::make_unique<FunctionState>();
  fs->info = info;
  fs->context = std::make_unique<rt::step::Context>(backend_.get());
  fs->context->collectives = collectives_;
  fs->arena = backend_->alloc(static_cast<size_t>(info->arenaBytes));
  fs->context->arena = static_cast<char *>(fs->arena);
  fs->context->results.assign(info->results.size(), nullptr);
  for (const ArgumentInfo &arg : info->arguments) {
    if (arg.role == ArgumentRole::Input) {
      void *ptr = backend_->alloc(arg.bytes());
      fs->inputs[arg.name] = ptr;
      fs->context->arguments.push_back(ptr);
    } else if (arg.role == ArgumentRole::State && !buffers.count(arg.name)) {
      fs->context->arguments.push_back(decodingBuffer(arg));
    } else {
      fs->context->arguments.push_back(buffers.at(arg.name).second);
    }
  }
  // State that a function starts (encode's outputs) has the shape of the
  // decode_step argument that reads it.
  if (const FunctionInfo *reader = package.function("decode_step"))
    for (const ResultInfo &result : info->results)
      if (result.kind == ResultKind::State && !buffers.count(result.name))
        for (const ArgumentInfo &arg : reader->arguments)
          if (arg.role == ArgumentRole::State && arg.name == result.name)
            decodingBuffer(arg);
  FunctionState &ref = *fs;
  functions.emplace(role, std::move(fs));
  return ref;
}

CallResult Session::call(const std::string &role,
                         const std::map<std::string, const int32_t *> &inputs,
                         int64_t step, bool training, bool collectStats) {
  FunctionState &fs = state(role);
  rt::step::Context &ctx = *fs.context;
  for (const ArgumentInfo &arg : fs.info->arguments) {
    if (arg.role != ArgumentRole::Input)
      continue;
    auto it = inputs.find(arg.name);
    if (it == inputs.end())
      throw std::runtime_error("no data for input '" + arg.name + "'");
    if (arg.dtype != "i32")
      throw std::runtime_error("input '" + arg.name + "' is " + arg.dtype +
                               "; moe-run feeds i32 ids");
    // Ids are checked on the host: the CUDA kernels trust them.
    if (arg.idBound > 0)
      for (int64_t i = 0, e = arg.elements(); i < e; ++i) {
        int32_t id = it->second[i];
        if (id >= arg.idBound || id < (arg.allowsPadding ? -1 : 0))
          throw std::runtime_error("input '" + arg.name + "': id " +
                                   std::to_string(id) + " outside [0, " +
                                   std::to_string(arg.idBound) + ")");
      }
    if (arg.maxLength > 0)
      for (int64_t i = 0, e = arg.elements(); i < e; ++i) {
        int32_t length = it->second[i];
        if (length < 1 || length > arg.maxLength)
          throw std::runtime_error("input '" + arg.name + "': length " +
                                   std::to_string(length) + " of sequence " +
                                   std::to_string(i) + " outside [1, " +
                                   std::to_string(arg.maxLength) + "]");
      }
    backend_->copyFromHost(fs.inputs.at(arg.name), it->second, arg.bytes());
  }
  auto stepBuffer = buffers.find("step");
  if (stepBuffer != buffers.end() && role == "train_step")
    backend_->copyFromHost(stepBuffer->second.second, &step, sizeof(step));

  ctx.beginCall();
  ctx.capturedLogits.clear();
  // One seed for all ranks: each rank draws its shard of the global batch's
  // noise (Context::rngFor), and sampled-softmax classes are shared.
  ctx.seed = seed_;
  ctx.step = step;
  ctx.training = training;
  ctx.collectStats = collectStats;
  auto start = std::chrono::steady_clock::now();
  fs.info->entry(&ctx);
  backend_->synchronize();
  CallResult result;
  result.seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();

  for (size_t i = 0; i < fs.info->results.size(); ++i) {
    const ResultInfo &r = fs.info->results[i];
    const void *ptr = ctx.results[i];
    if (!ptr)
      throw std::runtime_error(fs.info->symbol + " did not set result #" +
                               std::to_string(i));
    if (r.kind == ResultKind::Loss)
      backend_->copyToHost(&result.loss, ptr, sizeof(float));
    else if (r.kind == ResultKind::Lr)
      backend_->copyToHost(&result.lr, ptr, sizeof(float));
    else if (r.kind == ResultKind::Param || r.kind == ResultKind::State) {
      auto found = buffers.find(r.name);
      if (found == buffers.end() && r.kind == ResultKind::State) {
        auto decoding = decodingState.find(r.name);
        if (decoding != decodingState.end()) {
          backend_->copyDevice(decoding->second.second, ptr,
                               decoding->second.first.bytes());
          continue;
        }
      }
      if (found == buffers.end())
        throw std::runtime_error(fs.info->symbol + ": result '" + r.name +
                                 "' is no parameter or state");
      auto &[info, buffer] = found->second;
      if (ptr != buffer)
        backend_->copyDevice(buffer, ptr, localBytes(info));
    }
  }
  result.stats = ctx.stats;
  return result;
}

void Session::prepare(const std::string &role) {
  try {
    state(role);
  } catch (const std::bad_alloc &) {
    const FunctionInfo *info = package.function(role);
    throw std::runtime_error(
        "cannot allocate the " + std::to_string(info->arenaBytes >> 20) +
        " MiB arena of " + info->symbol + " on the " + backend_->name() +
        " backend");
  }
}

void Session::setCollectives(rt::Collectives *collectives) {
  int count = collectives ? collectives->size() : 1;
  if (count != ranks())
    allocateShards(count);
  collectives_ = collectives;
  for (auto &[role, fs] : functions)
    fs->context->collectives = collectives;
}

int Session::rank() const { return collectives_ ? collectives_->rank() : 0; }

int Session::ranks() const { return collectives_ ? collectives_->size() : 1; }

void Session::captureLogits(const std::string &role,
                            std::vector<int64_t> rows) {
  state(role).context->captureRows = std::move(rows);
}

const std::vector<float> &Session::capturedLogits(const std::string &role) {
  return state(role).context->capturedLogits;
}

void Session::captureRoutes(const std::string &role, bool capture) {
  state(role).context->captureRoutes = capture;
}

const std::vector<rt::step::RouteCapture> &
Session::capturedRoutes(const std::string &role) {
  return state(role).context->routes;
}

const void *Session::resultPointer(const std::string &role, int index) const {
  auto it = functions.find(role);
  if (it == functions.end() || index < 0 ||
      static_cast<size_t>(index) >= it->second->context->results.size())
    return nullptr;
  return it->second->context->results[index];
}

std::vector<rt::CheckpointFile> Session::snapshot() const {
  const int count = ranks();
  const bool lead = rank() == 0;
  size_t largestShard = 0;
  bool anySharded = false;
  for (const auto &[name, entry] : buffers)
    if (entry.first.sharded) {
      anySharded = true;
      largestShard = std::max(largestShard, localBytes(entry.first));
    }
  std::vector<rt::CheckpointFile> files(1);
  files[0].name = rt::kTensorsFileName;
  if (anySharded)
    for (int r = 0; r < count; ++r)
      files.push_back({rt::expertShardFileName(r, count), {}});

  // Every rank sends its shard; the gather runs in backend memory, which is
  // what the collectives take (device memory under NCCL).
  size_t chunk = std::min(
      largestShard, std::max<size_t>(kGatherBytes / count, size_t(1) << 20));
  void *staging = nullptr;
  if (count > 1 && chunk > 0) {
    backend_->synchronize();
    staging = backend_->alloc(chunk * count);
  }
  try {
    for (const auto &[name, entry] : buffers) {
      const ArgumentInfo &arg = entry.first;
      const char *data = static_cast<const char *>(entry.second);
      if (!arg.sharded) {
        if (lead)
          files[0].tensors.push_back(hostCopy(name, arg.shape));
        continue;
      }
      const size_t bytes = localBytes(arg);
      // Rank r's slice goes to file 1 + r, under the tensor's own name.
      std::vector<uint8_t *> slices;
      if (lead)
        for (int r = 0; r < count; ++r) {
          rt::HostTensor t{name, checkpointDtype(arg.dtype),
                           arg.localShape(count), std::vector<uint8_t>(bytes)};
          files[1 + r].tensors.push_back(std::move(t));
          slices.push_back(files[1 + r].tensors.back().data.data());
        }
      if (count == 1) {
        backend_->copyToHost(slices[0], data, bytes);
        continue;
      }
      for (size_t offset = 0; offset < bytes; offset += chunk) {
        size_t n = std::min(chunk, bytes - offset);
        collectives_->allGather(data + offset, n, staging);
        for (size_t r = 0; r < slices.size(); ++r)
          backend_->copyToHost(slices[r] + offset,
                               static_cast<const char *>(staging) + r * n, n);
      }
    }
  } catch (...) {
    backend_->release(staging);
    throw;
  }
  backend_->release(staging);
  if (!lead)
    return {};
  return files;
}

rt::HostTensor Session::hostCopy(const std::string &name,
                                 const std::vector<int64_t> &shape) const {
  const auto &[arg, data] = buffers.at(name);
  rt::HostTensor t{name, checkpointDtype(arg.dtype), shape,
                   std::vector<uint8_t>(localBytes(arg))};
  backend_->copyToHost(t.data.data(), data, t.data.size());
  return t;
}

bool Session::hasShards() const {
  for (const auto &[name, entry] : buffers)
    if (entry.first.sharded)
      return true;
  return false;
}

std::vector<rt::CheckpointFile> Session::ownFiles() const {
  const int count = ranks(), me = rank();
  rt::CheckpointFile replicated{rt::kTensorsFileName, {}};
  rt::CheckpointFile shard{rt::expertShardFileName(me, count), {}};
  for (const auto &[name, entry] : buffers) {
    const ArgumentInfo &arg = entry.first;
    if (arg.sharded)
      shard.tensors.push_back(hostCopy(name, arg.localShape(count)));
    else if (me == 0)
      replicated.tensors.push_back(hostCopy(name, arg.shape));
  }
  std::vector<rt::CheckpointFile> files;
  if (me == 0)
    files.push_back(std::move(replicated));
  if (!shard.tensors.empty())
    files.push_back(std::move(shard));
  return files;
}

rt::Checkpoint Session::loadCheckpoint(const std::string &dir) const {
  if (!hasShards())
    return rt::loadCheckpoint(dir);
  return rt::loadCheckpoint(dir, rank(), ranks());
}

void Session::restore(const rt::Checkpoint &checkpoint) {
  if (checkpoint.slices > 1 && checkpoint.slices != ranks())
    throw rt::CheckpointError(
        "checkpoint loaded as " + std::to_string(checkpoint.slices) +
        " slices for a session of " + std::to_string(ranks()) + " ranks");
  for (auto &[name, entry] : buffers) {
    const ArgumentInfo &arg = entry.first;
    const rt::HostTensor *t = checkpoint.find(name);
    if (!t)
      throw rt::CheckpointError("checkpoint has no tensor '" + name +
                                "' (saved from a different model?)");
    // A checkpoint holds global tensors, whatever the ranks it was saved
    // from; loaded in slices, a sharded tensor holds this rank's.
    const bool sliced = arg.sharded && checkpoint.slices > 1;
    const std::vector<int64_t> shape =
        sliced ? arg.localShape(ranks()) : arg.shape;
    const size_t bytes = localBytes(arg);
    std::string dtype = checkpointDtype(arg.dtype);
    if (t->shape != shape || t->dtype != dtype ||
        t->data.size() != (sliced ? bytes : arg.bytes()))
      throw rt::CheckpointError(
          "checkpoint tensor '" + name +
          "' has another shape or type than the package's (" + t->dtype + " " +
          shapeText(t->shape) + ", expected " + dtype + " " + shapeText(shape) +
          ")");
    size_t offset =
        arg.sharded && !sliced ? static_cast<size_t>(rank()) * bytes : 0;
    backend_->copyFromHost(entry.second, t->data.data() + offset, bytes);
  }
}

void *Session::buffer(const std::string &name) const {
  return buffers.at(name).second;
}

const ArgumentInfo &Session::bufferInfo(const std::string &name) const {
  return buffers.at(name).first;
}

std::vector<std::string> Session::parameterNames() const {
  std::vector<std::string> names;
  for (const ArgumentInfo *arg : package.trainableState())
    if (arg->role == ArgumentRole::Param)
      names.push_back(arg->name);
  return names;
}

} // namespace moe::run
