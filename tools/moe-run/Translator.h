//===- Translator.h - Beam search through a compiled model ------*- C++ -*-===//
//
// Decodes one beam hypothesis per row of the compiled batch: a call scores
// B / width sentences' beams at once. Two paths give the same hypotheses:
//  * incremental (packages with encode and decode_step, from
//    moe-add-decode-step): the encoder runs once per batch of sentences,
//    then one decode_step call per piece carries the LSTM states, whose
//    rows follow each surviving hypothesis's parent: O(T) per sentence;
//  * window (any package): the evaluation function re-runs the whole
//    decoder window (and the encoder) per piece, Session's logit capture
//    handing back each live row's logits at the current position: O(T^2).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_MOE_RUN_TRANSLATOR_H
#define MOE_TOOLS_MOE_RUN_TRANSLATOR_H

#include "tools/moe-run/BeamSearch.h"
#include "tools/moe-run/Options.h"
#include "tools/moe-run/TranslationData.h"

#include <cstdint>
#include <vector>

namespace moe::run {

class Package;
class Session;

/// Beam options for `shape` and `wordpieces`: `width` hypotheses (1:
/// greedy), GNMT's length penalty `alpha`, at most `maxLength` pieces (0:
/// the decoder window's T - 1, or kIncrementalLengthFactor times that when
/// decoding `incremental`ly). Throws std::runtime_error, naming the
/// options, when width exceeds the compiled batch or maxLength the window
/// of a window decoding.
BeamOptions translationBeam(const NmtShape &shape,
                            const rt::data::Wordpieces &wordpieces,
                            int64_t width, double alpha, int64_t maxLength,
                            bool incremental);

/// The default --max-length of incremental decoding, in decoder windows.
constexpr int64_t kIncrementalLengthFactor = 2;

/// Whether `path` decodes `package` incrementally (Auto: when it has
/// decode_step); throws std::runtime_error when Incremental is asked of a
/// package without decode_step (or, translating, without encode).
bool decodesIncrementally(const Package &package, DecodePath path);

/// The best hypothesis of each source (wordpiece ids, cut to the compiled
/// source length) without its EOS. The session must hold the parameters.
std::vector<std::vector<int32_t>>
translate(Session &session, const Package &package, const NmtShape &shape,
          const rt::data::Wordpieces &wordpieces,
          const std::vector<std::vector<int32_t>> &sources,
          const BeamOptions &beam, DecodePath path = DecodePath::Auto);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_TRANSLATOR_H
