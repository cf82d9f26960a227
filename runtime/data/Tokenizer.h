//===- Tokenizer.h - Word-level tokenizer of the LM corpora -----*- C++ -*-===//
//
// Splits a line of text into words for the word-level language models of
// the paper (section 5.1). Whitespace separates words; the punctuation
// characters , ; : . ? ! ( ) " are tokens of their own, so "light:" gives
// "light" and ":". Every other byte, apostrophes and UTF-8 sequences
// included, belongs to a word: "LORD's" and "sons'" stay one token. Case is
// preserved.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_TOKENIZER_H
#define MOE_RUNTIME_DATA_TOKENIZER_H

#include <string>
#include <string_view>
#include <vector>

namespace moe::rt::data {

/// Whether `c` is one of the bytes that separate words: space, \t, \n, \v,
/// \f, \r.
bool isWordSpace(char c);

/// Whether `c` is a punctuation character that forms a token of its own.
bool isPunctuationToken(char c);

/// The words of `line` in order. An empty or whitespace-only line gives no
/// tokens.
std::vector<std::string> tokenizeWords(std::string_view line);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_TOKENIZER_H
