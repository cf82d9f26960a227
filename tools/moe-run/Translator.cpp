//===- Translator.cpp - Beam search through a compiled model --------------===//

#include "tools/moe-run/Translator.h"

#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include <algorithm>
#include <stdexcept>

namespace moe::run {

BeamOptions translationBeam(const NmtShape &shape,
                            const rt::data::Wordpieces &wordpieces,
                            int64_t width, double alpha, int64_t maxLength) {
  if (width < 1)
    throw std::runtime_error("--beam must be at least 1");
  if (width > shape.batch)
    throw std::runtime_error(
        "--beam " + std::to_string(width) + " needs " + std::to_string(width) +
        " rows of the compiled batch, which has " +
        std::to_string(shape.batch) +
        " (each hypothesis is a row; recompile with a larger batch)");
  if (!(alpha >= 0))
    throw std::runtime_error("--length-penalty must not be negative");
  // Position t predicts piece t + 1: a window of T positions holds T - 1
  // pieces and the EOS after them.
  int64_t window = shape.targetLength - 1;
  if (maxLength > window)
    throw std::runtime_error("--max-length " + std::to_string(maxLength) +
                             " exceeds the decoder's window of " +
                             std::to_string(shape.targetLength) +
                             " positions (at most " + std::to_string(window) +
                             " pieces and EOS)");
  BeamOptions beam;
  beam.width = width;
  beam.lengthPenalty = alpha;
  beam.maxLength = maxLength ? maxLength : window;
  beam.eos = wordpieces.eosId();
  beam.excluded = {wordpieces.padId(), wordpieces.bosId()};
  return beam;
}

std::vector<std::vector<int32_t>>
translate(Session &session, const Package &package, const NmtShape &shape,
          const rt::data::Wordpieces &wordpieces,
          const std::vector<std::vector<int32_t>> &sources,
          const BeamOptions &beam) {
  const int64_t B = shape.batch, S = shape.sourceLength, T = shape.targetLength;
  const int32_t pad = wordpieces.padId(), bos = wordpieces.bosId();
  // Pieces the model may emit: those of the wordpiece model, of a
  // vocabulary that may be larger.
  const int64_t pieces = wordpieces.size();
  const int64_t perCall = B / beam.width;
  std::string role = package.evaluationFunction();
  std::vector<int32_t> source(B * S), lengths(B), tokens(B * T),
      targets(B * T, -1);
  InputArrays inputs = {{"source", source.data()},
                        {"tokens", tokens.data()},
                        {"targets", targets.data()}};
  if (shape.sourceLengths)
    inputs["source_lengths"] = lengths.data();
  std::vector<std::vector<int32_t>> result(sources.size());
  std::vector<float> logProbs;
  for (size_t first = 0; first < sources.size(); first += perCall) {
    size_t count = std::min<size_t>(perCall, sources.size() - first);
    // Sentence j's hypotheses are rows [j * width, (j + 1) * width), each
    // with the sentence's source; rows beyond are padding.
    std::fill(source.begin(), source.end(), pad);
    std::fill(lengths.begin(), lengths.end(), 1);
    std::vector<BeamSearch> searches;
    for (size_t j = 0; j < count; ++j) {
      const std::vector<int32_t> &ids = sources[first + j];
      int64_t length = std::min<int64_t>(ids.size(), S);
      for (int64_t i = 0; i < beam.width; ++i) {
        int64_t row = j * beam.width + i;
        std::copy_n(ids.begin(), length, source.begin() + row * S);
        lengths[row] = static_cast<int32_t>(std::max<int64_t>(length, 1));
      }
      searches.emplace_back(beam);
    }
    // Step t: every live hypothesis has t pieces, so the logits of its row
    // at position t score the next one.
    for (int64_t t = 0;; ++t) {
      std::fill(tokens.begin(), tokens.end(), pad);
      std::vector<int64_t> rows;
      for (size_t j = 0; j < count; ++j) {
        const std::vector<Hypothesis> &live = searches[j].live();
        for (size_t i = 0; i < live.size(); ++i) {
          int64_t row = j * beam.width + i;
          tokens[row * T] = bos;
          std::copy(live[i].pieces.begin(), live[i].pieces.end(),
                    tokens.begin() + row * T + 1);
          rows.push_back(row * T + t);
        }
      }
      if (rows.empty())
        break;
      if (t >= T)
        throw std::logic_error("translate: a hypothesis outgrew the window");
      session.captureLogits(role, rows);
      session.call(role, inputs, /*step=*/1, /*training=*/false,
                   /*collectStats=*/false);
      logProbs = session.capturedLogits(role);
      if (logProbs.empty() || logProbs.size() % rows.size())
        throw std::runtime_error("the model's output layer captured no "
                                 "logits (decoding needs a full softmax)");
      int64_t vocab = static_cast<int64_t>(logProbs.size() / rows.size());
      size_t next = 0;
      for (BeamSearch &search : searches) {
        std::vector<const float *> scores;
        for (size_t i = 0; i < search.live().size(); ++i, ++next) {
          float *row = logProbs.data() + next * vocab;
          logSoftmax(row, vocab);
          scores.push_back(row);
        }
        if (!scores.empty())
          search.advance(scores, std::min(vocab, pieces));
      }
    }
    for (size_t j = 0; j < count; ++j) {
      std::vector<int32_t> best = searches[j].best().pieces;
      if (!best.empty() && best.back() == beam.eos)
        best.pop_back();
      result[first + j] = std::move(best);
    }
  }
  session.captureLogits(role, {});
  return result;
}

} // namespace moe::run
