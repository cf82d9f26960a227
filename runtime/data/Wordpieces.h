//===- Wordpieces.h - A SentencePiece vocabulary of wordpieces --*- C++ -*-===//
//
// The translation model's vocabulary (paper section 5.2: wordpieces shared
// by source and target): a SentencePiece model, trained by
// scripts/nmt-corpus.py (spm_train) or by Wordpieces::train, maps UTF-8
// text to ids in [0, size()) and back. The special pieces are read from
// the model; scripts/nmt-corpus.py puts <pad> at 0, <unk> at 1, <s> (BOS)
// at 2 and </s> (EOS) at 3. Only this file's .cpp includes SentencePiece's
// headers.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_WORDPIECES_H
#define MOE_RUNTIME_DATA_WORDPIECES_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe::rt::data {

/// What Wordpieces::train passes to SentencePiece's trainer.
struct WordpieceTrainOptions {
  int64_t vocabSize = 8000;          ///< exact: training fails if too high
  std::string modelType = "unigram"; ///< or "bpe", "char", "word"
  double characterCoverage = 0.9995; ///< rarer characters become <unk>
  int32_t padId = 0, unkId = 1, bosId = 2, eosId = 3; ///< -1: none
  int64_t threads = 1;
};

class Wordpieces {
public:
  /// Reads a SentencePiece model file (spm.model). Throws
  /// std::runtime_error "wordpieces <path>: ..." (one line) when it cannot
  /// be read or is not a model.
  static Wordpieces load(const std::string &path);

  /// Trains a model on `sentences` (one segment each, UTF-8) in memory.
  /// Throws std::runtime_error "wordpieces: training failed: ..." with
  /// SentencePiece's reason, e.g. a vocabSize the text cannot fill.
  static Wordpieces train(const std::vector<std::string> &sentences,
                          const WordpieceTrainOptions &options);

  Wordpieces(Wordpieces &&) noexcept;
  Wordpieces &operator=(Wordpieces &&) noexcept;
  ~Wordpieces();

  /// Writes the model file that load() reads. Throws std::runtime_error
  /// naming the file on an I/O error.
  void save(const std::string &path) const;

  /// The ids of `text`'s pieces, without BOS or EOS. Text is normalized
  /// first (the model's rule, NFKC by default); characters outside the
  /// vocabulary become unkId().
  std::vector<int32_t> encode(const std::string &text) const;

  /// The text of `ids`: pieces joined, word boundaries turned back into
  /// spaces; pad, BOS and EOS produce nothing, unkId() " ⁇ ". Throws
  /// std::out_of_range unless every id is in [0, size()).
  std::string decode(const std::vector<int32_t> &ids) const;

  /// The piece of `id` ("▁the", "<unk>"); throws std::out_of_range unless
  /// 0 <= id < size().
  std::string piece(int32_t id) const;

  int64_t size() const;
  /// The special pieces' ids; -1 when the model has none.
  int32_t padId() const;
  int32_t unkId() const;
  int32_t bosId() const;
  int32_t eosId() const;

  /// 64-bit FNV-1a of the serialized model: two runs encode alike when
  /// their fingerprints agree (stored in checkpoints, as Vocabulary's).
  uint64_t fingerprint() const;

private:
  struct Impl;
  explicit Wordpieces(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_WORDPIECES_H
