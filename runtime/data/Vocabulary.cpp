//===- Vocabulary.cpp - Word <-> id mapping of the LM corpora -------------===//
//
// build() counts words in a hash map and sorts the distinct words once;
// load() checks everything save() guarantees, because a vocabulary that
// maps words to other ids than the checkpoint was trained with would train
// on silently wrong data.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Vocabulary.h"
#include "runtime/data/TextFile.h"

#include "runtime/Fnv1a.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace moe::rt::data {

namespace {

std::runtime_error fileError(const std::string &path, const std::string &what) {
  return std::runtime_error("vocabulary " + path + ": " + what);
}

} // namespace

Vocabulary::Vocabulary() { assign({kUnkWord, kEosWord}); }

std::string Vocabulary::assign(std::vector<std::string> words) {
  if (words.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return "more words than int32 ids";
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i].empty())
      return "empty word at line " + std::to_string(i + 1);
    auto [it, inserted] = ids.emplace(words[i], static_cast<int32_t>(i));
    if (!inserted)
      return "duplicate word '" + words[i] + "' at lines " +
             std::to_string(it->second + 1) + " and " + std::to_string(i + 1);
  }
  if (words.size() < 2 || words[kUnkId] != kUnkWord ||
      words[kEosId] != kEosWord)
    return std::string("the first two lines must be ") + kUnkWord + " and " +
           kEosWord;
  words_ = std::move(words);
  ids_ = std::move(ids);
  return {};
}

Vocabulary
Vocabulary::build(const std::vector<std::vector<std::string>> &sentences,
                  int64_t maxSize, int64_t minCount) {
  if (maxSize < 2)
    throw std::invalid_argument(
        "Vocabulary::build: maxSize must be at least 2 (<unk> and <eos>)");
  if (minCount < 1)
    throw std::invalid_argument("Vocabulary::build: minCount must be >= 1");

  std::unordered_map<std::string, int64_t> counts;
  for (const auto &sentence : sentences)
    for (const auto &word : sentence)
      ++counts[word];
  counts.erase(kUnkWord);
  counts.erase(kEosWord);

  std::vector<std::pair<const std::string *, int64_t>> ranked;
  ranked.reserve(counts.size());
  for (const auto &[word, count] : counts) {
    if (word.empty() || word.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument(
          "Vocabulary::build: a word is empty or holds a line break");
    if (count >= minCount)
      ranked.emplace_back(&word, count);
  }
  // std::string compares bytes as unsigned char, so the order does not
  // depend on the signedness of char.
  std::sort(ranked.begin(), ranked.end(), [](const auto &a, const auto &b) {
    return a.second != b.second ? a.second > b.second : *a.first < *b.first;
  });

  // assign() rejects more than int32 ids.
  size_t keep = static_cast<size_t>(
      std::min<int64_t>(static_cast<int64_t>(ranked.size()), maxSize - 2));
  std::vector<std::string> words = {kUnkWord, kEosWord};
  words.reserve(keep + 2);
  for (size_t i = 0; i < keep; ++i)
    words.push_back(*ranked[i].first);

  Vocabulary vocab;
  std::string error = vocab.assign(std::move(words));
  if (!error.empty())
    throw std::logic_error("Vocabulary::build: " + error);
  return vocab;
}

Vocabulary Vocabulary::load(const std::string &path) {
  std::string text = readNonEmptyFile(path, "vocabulary");

  // save() ends every word with '\n'; a missing final newline is accepted.
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    words.emplace_back(text, start, end - start);
    start = end + 1;
  }

  Vocabulary vocab;
  std::string error = vocab.assign(std::move(words));
  if (!error.empty())
    throw fileError(path, error);
  return vocab;
}

void Vocabulary::save(const std::string &path) const {
  std::FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    throw fileError(path, std::string("cannot create (") +
                              std::strerror(errno) + ")");
  bool ok = true;
  for (const auto &word : words_) {
    ok = ok && std::fwrite(word.data(), 1, word.size(), file) == word.size();
    ok = ok && std::fputc('\n', file) != EOF;
  }
  // fclose flushes: a full disk may only show up here.
  ok = std::fclose(file) == 0 && ok;
  if (!ok)
    throw fileError(path, "write error");
}

int32_t Vocabulary::id(const std::string &word) const {
  auto it = ids_.find(word);
  return it == ids_.end() ? kUnkId : it->second;
}

const std::string &Vocabulary::word(int32_t id) const {
  if (id < 0 || id >= size())
    throw std::out_of_range("Vocabulary::word: id " + std::to_string(id) +
                            " out of range [0, " + std::to_string(size()) +
                            ")");
  return words_[id];
}

uint64_t Vocabulary::fingerprint() const {
  Fnv1a hash;
  for (const auto &word : words_)
    // The separator keeps {"ab", "c"} apart from {"a", "bc"}.
    hash.bytes(word).byte('\n');
  return hash.value();
}

} // namespace moe::rt::data
