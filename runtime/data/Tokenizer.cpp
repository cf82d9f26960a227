//===- Tokenizer.cpp - Word-level tokenizer of the LM corpora -------------===//
//
// A single pass over the bytes. Non-ASCII bytes are never whitespace or
// punctuation, so a UTF-8 sequence is never cut.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Tokenizer.h"

namespace moe::rt::data {

bool isWordSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

bool isPunctuationToken(char c) {
  switch (c) {
  case ',':
  case ';':
  case ':':
  case '.':
  case '?':
  case '!':
  case '(':
  case ')':
  case '"':
    return true;
  default:
    return false;
  }
}

std::vector<std::string> tokenizeWords(std::string_view line) {
  std::vector<std::string> tokens;
  size_t i = 0, n = line.size();
  while (i < n) {
    char c = line[i];
    if (isWordSpace(c)) {
      ++i;
      continue;
    }
    if (isPunctuationToken(c)) {
      tokens.emplace_back(1, c);
      ++i;
      continue;
    }
    size_t start = i;
    while (i < n && !isWordSpace(line[i]) && !isPunctuationToken(line[i]))
      ++i;
    tokens.emplace_back(line.substr(start, i - start));
  }
  return tokens;
}

} // namespace moe::rt::data
