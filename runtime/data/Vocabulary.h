//===- Vocabulary.h - Word <-> id mapping of the LM corpora -----*- C++ -*-===//
//
// Ids 0 and 1 are reserved for "<unk>" (every out-of-vocabulary word) and
// "<eos>" (end of sentence); the other words follow by decreasing count.
// A vocabulary is saved next to a checkpoint as plain text, one word per
// line in id order, and its fingerprint is stored in the checkpoint so that
// a resumed run can check it maps words to the same ids.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_VOCABULARY_H
#define MOE_RUNTIME_DATA_VOCABULARY_H

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace moe::rt::data {

constexpr int32_t kUnkId = 0;
constexpr int32_t kEosId = 1;
constexpr const char *kUnkWord = "<unk>";
constexpr const char *kEosWord = "<eos>";

class Vocabulary {
public:
  /// The vocabulary of the two reserved words only.
  Vocabulary();

  /// The `maxSize` entries (the two reserved ones included) of the most
  /// frequent words of `sentences` that occur at least `minCount` times.
  /// Ties are broken by the words' byte order, so the result does not depend
  /// on the order of the text or of a hash map. Occurrences of "<unk>" and
  /// "<eos>" in the text count for nothing (they keep ids 0 and 1). Throws
  /// std::invalid_argument when maxSize < 2, minCount < 1, or a word is empty
  /// or holds a line break (it could not be saved one per line).
  static Vocabulary
  build(const std::vector<std::vector<std::string>> &sentences, int64_t maxSize,
        int64_t minCount = 1);

  /// Reads a file written by save(). Throws std::runtime_error with a
  /// one-line message naming the file when it cannot be read, is empty, has
  /// an empty line or a duplicate word, or lacks "<unk>" and "<eos>" as its
  /// first two lines.
  static Vocabulary load(const std::string &path);

  /// Writes one word per line in id order. Throws std::runtime_error naming
  /// the file on an I/O error.
  void save(const std::string &path) const;

  /// The id of `word`; kUnkId when it is not in the vocabulary.
  int32_t id(const std::string &word) const;

  /// The word of `id`; throws std::out_of_range unless 0 <= id < size().
  const std::string &word(int32_t id) const;

  int64_t size() const { return static_cast<int64_t>(words_.size()); }

  /// The words in id order.
  const std::vector<std::string> &words() const { return words_; }

  /// 64-bit FNV-1a over the words in id order, each followed by '\n': the
  /// hash of the file save() writes.
  uint64_t fingerprint() const;

private:
  /// Takes words in id order; the reserved ones must already be first.
  /// Returns the empty string on success, else what is wrong.
  std::string assign(std::vector<std::string> words);

  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> ids_;
};

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_VOCABULARY_H
