//===- Translator.cpp - Beam search through a compiled model --------------===//

#include "tools/moe-run/Translator.h"

#include "tools/moe-run/Package.h"
#include "tools/moe-run/Session.h"

#include <algorithm>
#include <stdexcept>

namespace moe::run {

BeamOptions translationBeam(const NmtShape &shape,
                            const rt::data::Wordpieces &wordpieces,
                            int64_t width, double alpha, int64_t maxLength,
                            bool incremental) {
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
  if (maxLength > window && !incremental)
    throw std::runtime_error("--max-length " + std::to_string(maxLength) +
                             " exceeds the decoder's window of " +
                             std::to_string(shape.targetLength) +
                             " positions (at most " + std::to_string(window) +
                             " pieces and EOS; incremental decoding has no "
                             "window)");
  BeamOptions beam;
  beam.width = width;
  beam.lengthPenalty = alpha;
  // The decode step carries LSTM states, not a window, so it may go on past
  // the training window: targets are longer than their sources (French runs
  // about 1.2 English pieces) and the window cuts long ones in training.
  beam.maxLength =
      maxLength ? maxLength
                : (incremental ? kIncrementalLengthFactor * window : window);
  beam.eos = wordpieces.eosId();
  beam.excluded = {wordpieces.padId(), wordpieces.bosId()};
  return beam;
}

bool decodesIncrementally(const Package &package, DecodePath path) {
  bool has = package.function("decode_step") &&
             (!isTranslationModel(package) || package.function("encode"));
  if (path == DecodePath::Incremental && !has) {
    const std::string &reason = package.noDecodeStepReason();
    throw std::runtime_error(
        "--decode incremental: package " + package.directory() +
        " has no decode_step function " +
        (reason.empty()
             ? "(compile it with moe-add-decode-step)"
             : "(moe-add-decode-step could not derive one: " + reason + ")"));
  }
  return path == DecodePath::Window ? false : has;
}

namespace {

/// The sources of up to B / width sentences, each repeated for its beam:
/// sentence j's hypotheses are rows [j * width, (j + 1) * width); rows
/// beyond are padding.
struct SourceBatch {
  std::vector<int32_t> source, lengths;
  std::vector<BeamSearch> searches;

  SourceBatch(const NmtShape &shape, const BeamOptions &beam, int32_t pad,
              const std::vector<std::vector<int32_t>> &sources, size_t first,
              size_t count)
      : source(shape.batch * shape.sourceLength, pad), lengths(shape.batch, 1) {
    const int64_t S = shape.sourceLength;
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
  }

  /// Advances every search with its rows of `logits` (`rowOf(j, i)`: the
  /// row, in units of `vocab` floats, of sentence j's live hypothesis i),
  /// scoring the first `pieces` ids.
  template <typename RowOf>
  void advance(std::vector<float> &logits, int64_t vocab, int64_t pieces,
               RowOf rowOf) {
    for (size_t j = 0; j < searches.size(); ++j) {
      std::vector<const float *> scores;
      for (size_t i = 0; i < searches[j].live().size(); ++i) {
        float *row = logits.data() + rowOf(j, i) * vocab;
        logSoftmax(row, vocab);
        scores.push_back(row);
      }
      if (!scores.empty())
        searches[j].advance(scores, std::min(vocab, pieces));
    }
  }

  /// Each sentence's best hypothesis without its EOS, into `result` from
  /// `first` on.
  void collect(const BeamOptions &beam,
               std::vector<std::vector<int32_t>> &result, size_t first) const {
    for (size_t j = 0; j < searches.size(); ++j) {
      std::vector<int32_t> best = searches[j].best().pieces;
      if (!best.empty() && best.back() == beam.eos)
        best.pop_back();
      result[first + j] = std::move(best);
    }
  }
};

/// Re-runs the evaluation function's window per piece: every live
/// hypothesis has t pieces at step t, so its row's logits at position t
/// score the next one.
void translateWindow(Session &session, const Package &package,
                     const NmtShape &shape, SourceBatch &batch,
                     const BeamOptions &beam, int32_t pad, int32_t bos,
                     int64_t pieces) {
  const int64_t B = shape.batch, T = shape.targetLength;
  std::string role = package.evaluationFunction();
  std::vector<int32_t> tokens(B * T), targets(B * T, -1);
  InputArrays inputs = {{"source", batch.source.data()},
                        {"tokens", tokens.data()},
                        {"targets", targets.data()}};
  if (shape.sourceLengths)
    inputs["source_lengths"] = batch.lengths.data();
  for (int64_t t = 0;; ++t) {
    std::fill(tokens.begin(), tokens.end(), pad);
    std::vector<int64_t> rows;
    for (size_t j = 0; j < batch.searches.size(); ++j) {
      const std::vector<Hypothesis> &live = batch.searches[j].live();
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
    std::vector<float> logits = session.capturedLogits(role);
    if (logits.empty() || logits.size() % rows.size())
      throw std::runtime_error("the model's output layer captured no "
                               "logits (decoding needs a full softmax)");
    int64_t vocab = static_cast<int64_t>(logits.size() / rows.size());
    // The captured rows are the live hypotheses in order.
    std::vector<size_t> firstRow(batch.searches.size(), 0);
    for (size_t j = 1; j < batch.searches.size(); ++j)
      firstRow[j] = firstRow[j - 1] + batch.searches[j - 1].live().size();
    batch.advance(logits, vocab, pieces, [&](size_t j, size_t i) {
      return static_cast<int64_t>(firstRow[j] + i);
    });
  }
  session.captureLogits(role, {});
}

/// Encodes once, then steps decode_step per piece: row j * width + i feeds
/// the last piece of sentence j's live hypothesis i (BOS first) and holds
/// its LSTM states, which follow the hypothesis's parent after each step.
void translateIncremental(Session &session, const NmtShape &shape,
                          SourceBatch &batch, const BeamOptions &beam,
                          int32_t bos, int64_t pieces) {
  const int64_t B = shape.batch;
  InputArrays encodeInputs = {{"source", batch.source.data()}};
  if (shape.sourceLengths)
    encodeInputs["source_lengths"] = batch.lengths.data();
  session.resetDecodingState();
  session.call("encode", encodeInputs, /*step=*/1, /*training=*/false,
               /*collectStats=*/false);
  std::vector<int32_t> tokens(B, bos);
  InputArrays stepInputs = {{"tokens", tokens.data()}};
  if (shape.sourceLengths)
    stepInputs["source_lengths"] = batch.lengths.data();
  std::vector<int64_t> parents(B);
  while (true) {
    bool live = false;
    for (size_t j = 0; j < batch.searches.size(); ++j) {
      const std::vector<Hypothesis> &hyps = batch.searches[j].live();
      live |= !hyps.empty();
      for (size_t i = 0; i < hyps.size(); ++i)
        tokens[j * beam.width + i] =
            hyps[i].pieces.empty() ? bos : hyps[i].pieces.back();
    }
    if (!live)
      break;
    std::vector<float> logits =
        session.callForLogits("decode_step", stepInputs);
    int64_t vocab = static_cast<int64_t>(logits.size()) / B;
    batch.advance(logits, vocab, pieces, [&](size_t j, size_t i) {
      return static_cast<int64_t>(j * beam.width + i);
    });
    // Survivors take their parent's states; other rows keep theirs.
    for (int64_t row = 0; row < B; ++row)
      parents[row] = row;
    for (size_t j = 0; j < batch.searches.size(); ++j) {
      const std::vector<Hypothesis> &hyps = batch.searches[j].live();
      for (size_t i = 0; i < hyps.size(); ++i)
        parents[j * beam.width + i] = j * beam.width + hyps[i].parent;
    }
    session.gatherDecodingState("decode_step", parents);
  }
}

} // namespace

std::vector<std::vector<int32_t>>
translate(Session &session, const Package &package, const NmtShape &shape,
          const rt::data::Wordpieces &wordpieces,
          const std::vector<std::vector<int32_t>> &sources,
          const BeamOptions &beam, DecodePath path) {
  const int32_t pad = wordpieces.padId(), bos = wordpieces.bosId();
  // Pieces the model may emit: those of the wordpiece model, of a
  // vocabulary that may be larger.
  const int64_t pieces = wordpieces.size();
  const size_t perCall = static_cast<size_t>(shape.batch / beam.width);
  bool incremental = decodesIncrementally(package, path);
  std::vector<std::vector<int32_t>> result(sources.size());
  for (size_t first = 0; first < sources.size(); first += perCall) {
    size_t count = std::min<size_t>(perCall, sources.size() - first);
    SourceBatch batch(shape, beam, pad, sources, first, count);
    if (incremental)
      translateIncremental(session, shape, batch, beam, bos, pieces);
    else
      translateWindow(session, package, shape, batch, beam, pad, bos, pieces);
    batch.collect(beam, result, first);
  }
  return result;
}

} // namespace moe::run
