//===- Bleu.cpp - Corpus BLEU as sacreBLEU computes it --------------------===//
//
// The tokenizer works on UTF-8 bytes. sacreBLEU's regular expressions work
// on code points, but every character they name is ASCII and no byte of a
// multi-byte character is ASCII, so matching byte by byte finds the same
// matches and writes the same text: a "[^0-9]" that matches one byte of a
// multi-byte character only ever inserts spaces beside the whole character.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/Bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace moe::rt::data {

namespace {

/// The length in bytes of the whitespace character at text[i], 0 when there
/// is none: Python's str.isspace() characters, which str.split() and
/// str.rstrip() use.
size_t whitespaceAt(std::string_view text, size_t i) {
  auto byte = [&](size_t k) {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
  };
  unsigned char c = byte(0);
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20))
    return 1;
  if (c == 0xC2 && (byte(1) == 0x85 || byte(1) == 0xA0)) // U+0085, U+00A0
    return 2;
  if (c == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) // U+1680
    return 3;
  if (c == 0xE2 && byte(1) == 0x80) {
    unsigned char d = byte(2);
    // U+2000..U+200A, U+2028, U+2029, U+202F
    if ((d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF)
      return 3;
  }
  if (c == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) // U+205F
    return 3;
  if (c == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) // U+3000
    return 3;
  return 0;
}

/// Python's text.split(): the maximal runs without whitespace.
std::vector<std::string_view> splitWhitespace(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0, begin = std::string_view::npos;
  while (i < text.size()) {
    if (size_t n = whitespaceAt(text, i)) {
      if (begin != std::string_view::npos)
        words.push_back(text.substr(begin, i - begin));
      begin = std::string_view::npos;
      i += n;
    } else {
      if (begin == std::string_view::npos)
        begin = i;
      ++i;
    }
  }
  if (begin != std::string_view::npos)
    words.push_back(text.substr(begin));
  return words;
}

/// Python's text.rstrip().
std::string_view stripTrailingWhitespace(std::string_view text) {
  size_t end = 0;
  for (size_t i = 0; i < text.size();) {
    size_t n = whitespaceAt(text, i);
    i += n ? n : 1;
    if (!n)
      end = i;
  }
  return text.substr(0, end);
}

void replaceAll(std::string &text, std::string_view from, std::string_view to) {
  std::string out;
  size_t at = 0;
  for (size_t hit; (hit = text.find(from, at)) != std::string::npos;
       at = hit + from.size())
    out.append(text, at, hit - at).append(to);
  out.append(text, at, std::string::npos);
  text = std::move(out);
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isPeriodOrComma(char c) { return c == '.' || c == ','; }

/// sacreBLEU's first regular expression's class:
/// [\{-\~\[-\` -\&\(-\+\:-\@\/].
bool isSplitSymbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') ||
         (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

/// re.sub(r'(A)(B)', replacement, text) for one-character groups: scans
/// left to right, and after a match resumes behind its second character.
template <typename First, typename Second, typename Write>
std::string substitutePairs(const std::string &text, First first, Second second,
                            Write write) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (size_t i = 0; i < text.size();) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      write(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

using NgramCounts = std::unordered_map<std::string, int64_t>;

/// The n-grams of orders 1..kBleuMaxOrder of a tokenized segment, each a
/// string of its tokens joined by spaces (tokens hold no space).
NgramCounts countNgrams(const std::vector<std::string_view> &tokens) {
  NgramCounts counts;
  for (size_t n = 1; n <= kBleuMaxOrder; ++n)
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string ngram(tokens[i]);
      for (size_t k = 1; k < n; ++k)
        ngram.append(" ").append(tokens[i + k]);
      ++counts[ngram];
    }
  return counts;
}

/// sacreBLEU's my_log: log, with log(0) floored to -9999999999.
double flooredLog(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

} // namespace

std::string tokenize13a(const std::string &segment) {
  std::string line(stripTrailingWhitespace(segment));
  replaceAll(line, "<skipped>", "");
  replaceAll(line, "-\n", "");
  replaceAll(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replaceAll(line, "&quot;", "\"");
    replaceAll(line, "&amp;", "&");
    replaceAll(line, "&lt;", "<");
    replaceAll(line, "&gt;", ">");
  }
  std::string spaced = " ";
  for (char c : line) {
    if (isSplitSymbol(c))
      spaced.append(" ").append(1, c).append(" ");
    else
      spaced += c;
  }
  spaced += ' ';
  auto notDigit = [](char c) { return !isDigit(c); };
  // ([^0-9])([\.,]) -> \1 \2
  spaced = substitutePairs(spaced, notDigit, isPeriodOrComma,
                           [](std::string &out, char a, char b) {
                             out.append(1, a).append(" ").append(1, b) += ' ';
                           });
  // ([\.,])([^0-9]) -> " \1 \2"
  spaced = substitutePairs(spaced, isPeriodOrComma, notDigit,
                           [](std::string &out, char a, char b) {
                             out.append(" ").append(1, a).append(" ") += b;
                           });
  // ([0-9])(-) -> \1 \2
  spaced = substitutePairs(
      spaced, isDigit, [](char c) { return c == '-'; },
      [](std::string &out, char a, char b) {
        out.append(1, a).append(" ").append(1, b) += ' ';
      });
  std::string tokenized;
  for (std::string_view word : splitWhitespace(spaced)) {
    if (!tokenized.empty())
      tokenized += ' ';
    tokenized.append(word);
  }
  return tokenized;
}

BleuStats &BleuStats::operator+=(const BleuStats &other) {
  hypothesisLength += other.hypothesisLength;
  referenceLength += other.referenceLength;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    matches[n] += other.matches[n];
    totals[n] += other.totals[n];
  }
  return *this;
}

BleuStats segmentBleuStats(const std::string &hypothesis,
                           const std::string &reference) {
  std::string hypothesisTokens = tokenize13a(hypothesis);
  std::string referenceTokens = tokenize13a(reference);
  std::vector<std::string_view> hyp = splitWhitespace(hypothesisTokens);
  std::vector<std::string_view> ref = splitWhitespace(referenceTokens);
  BleuStats stats;
  stats.hypothesisLength = static_cast<int64_t>(hyp.size());
  stats.referenceLength = static_cast<int64_t>(ref.size());
  NgramCounts referenceCounts = countNgrams(ref);
  for (const auto &[ngram, count] : countNgrams(hyp)) {
    // The order is the number of tokens: one more than the spaces.
    size_t order = std::count(ngram.begin(), ngram.end(), ' ');
    stats.totals[order] += count;
    auto it = referenceCounts.find(ngram);
    if (it != referenceCounts.end())
      stats.matches[order] += std::min(count, it->second);
  }
  return stats;
}

double BleuScore::ratio() const {
  return stats.referenceLength ? static_cast<double>(stats.hypothesisLength) /
                                     static_cast<double>(stats.referenceLength)
                               : 0.0;
}

std::string BleuScore::format() const {
  char line[512];
  std::snprintf(line, sizeof(line),
                "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:%s = %.2f "
                "%.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld "
                "ref_len = %lld)",
                smoothing == BleuSmoothing::Exp ? "exp" : "none", score,
                precisions[0], precisions[1], precisions[2], precisions[3],
                brevityPenalty, ratio(),
                static_cast<long long>(stats.hypothesisLength),
                static_cast<long long>(stats.referenceLength));
  return line;
}

BleuScore computeBleu(const BleuStats &stats, BleuSmoothing smoothing) {
  BleuScore result;
  result.stats = stats;
  result.smoothing = smoothing;
  double c = static_cast<double>(stats.hypothesisLength);
  double r = static_cast<double>(stats.referenceLength);
  result.brevityPenalty = 1.0;
  if (c < r)
    result.brevityPenalty = c > 0 ? std::exp(1.0 - r / c) : 0.0;
  // No match of any order: 0, whatever the smoothing (sacreBLEU #141).
  if (std::all_of(stats.matches.begin(), stats.matches.end(),
                  [](int64_t m) { return m == 0; }))
    return result;
  double smoothingDivisor = 1.0;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    // No n-grams of this order (nor of higher ones): their precisions stay
    // 0 and so does the score.
    if (stats.totals[n] == 0)
      break;
    double total = static_cast<double>(stats.totals[n]);
    if (stats.matches[n] > 0) {
      result.precisions[n] =
          100.0 * static_cast<double>(stats.matches[n]) / total;
    } else if (smoothing == BleuSmoothing::Exp) {
      smoothingDivisor *= 2;
      result.precisions[n] = 100.0 / (smoothingDivisor * total);
    }
  }
  double logSum = 0;
  for (double p : result.precisions)
    logSum += flooredLog(p);
  result.score = result.brevityPenalty * std::exp(logSum / kBleuMaxOrder);
  return result;
}

BleuScore corpusBleu(const std::vector<std::string> &hypotheses,
                     const std::vector<std::string> &references,
                     BleuSmoothing smoothing) {
  if (hypotheses.size() != references.size())
    throw std::invalid_argument(
        "corpusBleu: " + std::to_string(hypotheses.size()) +
        " hypotheses but " + std::to_string(references.size()) + " references");
  BleuStats stats;
  for (size_t i = 0; i < hypotheses.size(); ++i)
    stats += segmentBleuStats(hypotheses[i], references[i]);
  return computeBleu(stats, smoothing);
}

} // namespace moe::rt::data
