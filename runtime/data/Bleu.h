//===- Bleu.h - Corpus BLEU as sacreBLEU computes it ------------*- C++ -*-===//
//
// BLEU (Papineni et al. 2002) with sacreBLEU 2.x's defaults, so that a score
// printed here is comparable with published ones: one reference per
// segment, mixed case, the "13a" tokenizer (mteval-v13a.pl's, as
// sacreBLEU's tokenizer_13a.py writes it), n-grams of orders 1 to 4, counts
// clipped by the reference's, the brevity penalty exp(1 - r/c) when the
// hypothesis length c is below the reference length r (both summed over
// the corpus), and the geometric mean of the four precisions.
//
// sacreBLEU's default smoothing is "exp" (mteval's NIST smoothing), not
// "none": when an order n has hypothesis n-grams but no match, its
// precision is taken as 100 / (2^k * total_n) for the k-th such order
// instead of 0, so a corpus without a single matching 4-gram still scores
// above 0. The score is 0 when no n-gram of any order matches, when the
// hypotheses are empty, or when some order has no hypothesis n-gram at all
// (every hypothesis shorter than n words). Smoothing::None gives the
// textbook BLEU, 0 whenever some order has no match.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DATA_BLEU_H
#define MOE_RUNTIME_DATA_BLEU_H

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::data {

constexpr int kBleuMaxOrder = 4;

/// sacreBLEU's tokenizer_13a on one UTF-8 segment: trailing whitespace
/// removed; "<skipped>" removed; "&quot;", "&amp;", "&lt;", "&gt;"
/// unescaped (in that order); the ASCII symbols {|}~[\]^_`
/// space!"#$%&()*+:;<=>?@/ split off; '.' and ',' split off unless both
/// neighbours are digits ("3.14", "1,000" stay whole); '-' split off after
/// a digit; tokens joined by single spaces. Whitespace is Python's
/// str.split() whitespace, Unicode's included: French's no-break spaces
/// (U+00A0, U+202F) separate tokens. Apostrophes and hyphens between
/// letters stay inside words ("l'homme", "peut-être").
std::string tokenize13a(const std::string &segment);

/// The sufficient statistics of BLEU; those of a corpus are the sums of its
/// segments'.
struct BleuStats {
  int64_t hypothesisLength = 0; ///< tokens (sacreBLEU's sys_len)
  int64_t referenceLength = 0;  ///< tokens (sacreBLEU's ref_len)
  /// Per order n = 1..4 (index n - 1): hypothesis n-grams that match the
  /// reference, each counted at most as often as the reference holds it...
  std::array<int64_t, kBleuMaxOrder> matches{};
  /// ...and all hypothesis n-grams.
  std::array<int64_t, kBleuMaxOrder> totals{};

  BleuStats &operator+=(const BleuStats &other);
};

/// The statistics of one hypothesis against its reference, both tokenized
/// with tokenize13a here.
BleuStats segmentBleuStats(const std::string &hypothesis,
                           const std::string &reference);

enum class BleuSmoothing {
  Exp,  ///< sacreBLEU's default (see the file comment)
  None, ///< a precision without matches is 0, and so is BLEU
};

struct BleuScore {
  double score = 0;                               ///< in [0, 100]
  std::array<double, kBleuMaxOrder> precisions{}; ///< in percent
  double brevityPenalty = 0;
  BleuStats stats;
  BleuSmoothing smoothing = BleuSmoothing::Exp;

  /// hypothesisLength / referenceLength; 0 without reference tokens.
  double ratio() const;
  /// sacreBLEU's score line, e.g. "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|
  /// smooth:exp = 27.35 58.1/33.0/21.3/14.2 (BP = 0.979 ratio = 0.979
  /// hyp_len = 1234 ref_len = 1260)". The signature leaves out sacreBLEU's
  /// "version" key: this is not sacreBLEU.
  std::string format() const;
};

/// BLEU from summed statistics, as sacreBLEU's BLEU.compute_bleu.
BleuScore computeBleu(const BleuStats &stats,
                      BleuSmoothing smoothing = BleuSmoothing::Exp);

/// Corpus BLEU of hypotheses[i] against references[i]. Throws
/// std::invalid_argument when the two differ in length.
BleuScore corpusBleu(const std::vector<std::string> &hypotheses,
                     const std::vector<std::string> &references,
                     BleuSmoothing smoothing = BleuSmoothing::Exp);

} // namespace moe::rt::data

#endif // MOE_RUNTIME_DATA_BLEU_H
