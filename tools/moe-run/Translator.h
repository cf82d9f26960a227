//===- Translator.h - Beam search through a compiled model ------*- C++ -*-===//
//
// Decodes with the package's evaluation function, one beam hypothesis per
// row of the compiled batch: a call scores B / width sentences' beams at
// once, and Session's logit capture hands back each live row's logits at
// the current decoder position.
//
// This first version re-runs the whole decoder window (and the encoder) for
// every piece, O(T^2) per sentence where an incremental decoder that
// carries the LSTM state from step to step would be O(T). Packages now
// hold such functions (encode, decode_step: moe-add-decode-step, checked
// by `moe-run check-decode-step`), which this does not use yet; `moe-run
// generate` re-runs its window the same way.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_TRANSLATOR_H
#define MOE_TOOLS_MOE_RUN_TRANSLATOR_H

#include "tools/moe-run/BeamSearch.h"
#include "tools/moe-run/TranslationData.h"

#include <cstdint>
#include <vector>

namespace moe::run {

class Package;
class Session;

/// Beam options for `shape` and `wordpieces`: `width` hypotheses (1:
/// greedy), GNMT's length penalty `alpha`, at most `maxLength` pieces (0:
/// the decoder window's T - 1). Throws std::runtime_error, naming the
/// options, when width exceeds the compiled batch or maxLength the window.
BeamOptions translationBeam(const NmtShape &shape,
                            const rt::data::Wordpieces &wordpieces,
                            int64_t width, double alpha, int64_t maxLength);

/// The best hypothesis of each source (wordpiece ids, cut to the compiled
/// source length) without its EOS. The session must hold the parameters.
std::vector<std::vector<int32_t>>
translate(Session &session, const Package &package, const NmtShape &shape,
          const rt::data::Wordpieces &wordpieces,
          const std::vector<std::vector<int32_t>> &sources,
          const BeamOptions &beam);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_TRANSLATOR_H
