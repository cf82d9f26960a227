//===- Wordpieces.cpp - A SentencePiece vocabulary of wordpieces ----------===//
//
// Models are held as their serialized bytes (for save() and the
// fingerprint) next to the loaded processor.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Wordpieces.h"

#include "runtime/Fnv1a.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace moe::rt::data {

struct Wordpieces::Impl {
  std::string serialized;
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

/// Feeds in-memory sentences to SentencePiece's trainer.
class SentenceList : public sentencepiece::SentenceIterator {
public:
  explicit SentenceList(const std::vector<std::string> &sentences)
      : sentences_(sentences) {}
  bool done() const override { return next_ >= sentences_.size(); }
  void Next() override { ++next_; }
  const std::string &value() const override { return sentences_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

private:
  const std::vector<std::string> &sentences_;
  size_t next_ = 0;
};

/// SentencePiece's status as one line.
std::string oneLine(const sentencepiece::util::Status &status) {
  std::string text = status.ToString();
  for (char &c : text)
    if (c == '\n')
      c = ' ';
  return text;
}

} // namespace

Wordpieces::Wordpieces(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Wordpieces::Wordpieces(Wordpieces &&) noexcept = default;
Wordpieces &Wordpieces::operator=(Wordpieces &&) noexcept = default;
Wordpieces::~Wordpieces() = default;

Wordpieces Wordpieces::load(const std::string &path) {
  auto error = [&](const std::string &what) {
    return std::runtime_error("wordpieces " + path + ": " + what);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw error(std::string("cannot open (") + std::strerror(errno) + ")");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad())
    throw error("cannot read");
  auto impl = std::make_unique<Impl>();
  impl->serialized = bytes.str();
  if (impl->serialized.empty())
    throw error("empty file");
  auto status = impl->processor.LoadFromSerializedProto(impl->serialized);
  if (!status.ok())
    throw error("not a SentencePiece model (" + oneLine(status) + ")");
  return Wordpieces(std::move(impl));
}

Wordpieces Wordpieces::train(const std::vector<std::string> &sentences,
                             const WordpieceTrainOptions &options) {
  std::ostringstream args;
  // --model_prefix is required by the argument parser but unused: the model
  // is returned in memory. --minloglevel=1 keeps the progress log quiet.
  args << "--model_prefix= --minloglevel=1 --vocab_size=" << options.vocabSize
       << " --model_type=" << options.modelType
       << " --character_coverage=" << options.characterCoverage
       << " --pad_id=" << options.padId << " --unk_id=" << options.unkId
       << " --bos_id=" << options.bosId << " --eos_id=" << options.eosId
       << " --num_threads=" << options.threads;
  SentenceList list(sentences);
  auto impl = std::make_unique<Impl>();
  auto status = sentencepiece::SentencePieceTrainer::Train(args.str(), &list,
                                                           &impl->serialized);
  if (!status.ok())
    throw std::runtime_error("wordpieces: training failed: " + oneLine(status));
  status = impl->processor.LoadFromSerializedProto(impl->serialized);
  if (!status.ok())
    throw std::runtime_error("wordpieces: the trained model does not load: " +
                             oneLine(status));
  return Wordpieces(std::move(impl));
}

void Wordpieces::save(const std::string &path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(impl_->serialized.data(),
            static_cast<std::streamsize>(impl_->serialized.size()));
  out.close();
  if (!out)
    throw std::runtime_error("wordpieces " + path + ": cannot write");
}

std::vector<int32_t> Wordpieces::encode(const std::string &text) const {
  std::vector<int> ids;
  auto status = impl_->processor.Encode(text, &ids);
  if (!status.ok())
    throw std::runtime_error("wordpieces: cannot encode: " + oneLine(status));
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Wordpieces::decode(const std::vector<int32_t> &ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= size())
      throw std::out_of_range("wordpieces: id " + std::to_string(id) +
                              " outside [0, " + std::to_string(size()) + ")");
  std::string text;
  auto status =
      impl_->processor.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok())
    throw std::runtime_error("wordpieces: cannot decode: " + oneLine(status));
  return text;
}

std::string Wordpieces::piece(int32_t id) const {
  if (id < 0 || id >= size())
    throw std::out_of_range("wordpieces: id " + std::to_string(id) +
                            " outside [0, " + std::to_string(size()) + ")");
  return impl_->processor.IdToPiece(id);
}

int64_t Wordpieces::size() const { return impl_->processor.GetPieceSize(); }
int32_t Wordpieces::padId() const { return impl_->processor.pad_id(); }
int32_t Wordpieces::unkId() const { return impl_->processor.unk_id(); }
int32_t Wordpieces::bosId() const { return impl_->processor.bos_id(); }
int32_t Wordpieces::eosId() const { return impl_->processor.eos_id(); }

uint64_t Wordpieces::fingerprint() const {
  return Fnv1a().bytes(impl_->serialized).value();
}

} // namespace moe::rt::data
