//===- BeamSearch.h - Beam search with GNMT's length penalty ----*- C++ -*-===//
//
// The search of `moe-run translate` and of the BLEU of `moe-run eval`, kept
// apart from the model so that it can be tested on a hand-made scoring
// function. One BeamSearch decodes one sentence: the caller scores the live
// prefixes (one model row each) and hands back their next-piece
// log-probabilities, step after step, until done().
//
// Scores follow GNMT (Wu et al. 2016, section 7): a finished hypothesis Y
// scores log P(Y) / lp(Y), lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha, |Y| its
// pieces with the EOS; alpha = 0 ranks by probability alone, a larger
// alpha favours longer translations. Each step keeps the `width` best
// extensions by log-probability: an EOS among the best `width` finishes
// its hypothesis, the others stay live, and the search ends when `width`
// hypotheses have finished (fairseq's rule). Width 1 is greedy decoding.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_BEAMSEARCH_H
#define MOE_TOOLS_MOE_RUN_BEAMSEARCH_H

#include <cstdint>
#include <functional>
#include <vector>

namespace moe::run {

struct BeamOptions {
  int64_t width = 4;
  /// GNMT's alpha; 0: no length normalisation.
  double lengthPenalty = 0.6;
  /// Pieces a translation may have before its EOS; a hypothesis that
  /// reaches it can only end.
  int64_t maxLength = 100;
  int32_t eos = 3;
  /// Pieces never emitted (pad, BOS); every id >= vocab is also left out.
  std::vector<int32_t> excluded;
};

/// GNMT's lp(Y) for a hypothesis of `length` pieces (EOS included).
double lengthPenalty(int64_t length, double alpha);

struct Hypothesis {
  /// Pieces without BOS; a finished one ends with EOS.
  std::vector<int32_t> pieces;
  double logProb = 0;
  /// Index in the previous live() of the hypothesis this one extends (the
  /// model row whose decoding state it continues).
  size_t parent = 0;
  /// logProb / lengthPenalty(pieces.size(), alpha) once finished.
  double score = 0;
};

class BeamSearch {
public:
  /// Throws std::invalid_argument when width < 1 or maxLength < 0.
  explicit BeamSearch(BeamOptions options);

  /// The hypotheses to score next: the first step has one (no pieces), then
  /// at most width. Empty once done().
  const std::vector<Hypothesis> &live() const { return live_; }
  bool done() const { return live_.empty(); }

  /// Extends the live hypotheses: logProbs[i] points at the `vocab`
  /// log-probabilities of the piece after live()[i]. Throws
  /// std::invalid_argument when the counts differ.
  void advance(const std::vector<const float *> &logProbs, int64_t vocab);

  /// The finished hypotheses, in the order they finished.
  const std::vector<Hypothesis> &finished() const { return finished_; }
  /// The finished hypothesis of the highest score (the first of equals);
  /// throws std::logic_error before done().
  const Hypothesis &best() const;

private:
  BeamOptions options_;
  std::vector<Hypothesis> live_, finished_;
};

/// Log-probabilities of the next piece for each prefix (pieces without
/// BOS): logProbs[i] has `vocab` entries for prefixes[i].
using NextPieceScorer =
    std::function<void(const std::vector<std::vector<int32_t>> &prefixes,
                       std::vector<std::vector<float>> &logProbs)>;

/// Runs one search to the end with `scorer`; returns best().
Hypothesis beamSearch(const BeamOptions &options, int64_t vocab,
                      const NextPieceScorer &scorer);

/// In place: logits to log-probabilities (log-softmax, in double).
void logSoftmax(float *values, int64_t count);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_BEAMSEARCH_H
