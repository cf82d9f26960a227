//===- MoEAttrs.cpp - Enums and attributes of the moe dialect -------------===//

#include "dialect/MoEAttrs.h"
#include "dialect/MoEDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialect/MoEEnums.cpp.inc"

/// A number as a person writes it in a message: "0.1", "-1", "1e-05".
static std::string formatNumber(double value) {
  std::string text;
  llvm::raw_string_ostream(text) << llvm::format("%g", value);
  return text;
}

#define GET_ATTRDEF_CLASSES
#include "dialect/MoEAttrs.cpp.inc"

void MoEDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/MoEAttrs.cpp.inc"
      >();
}

LogicalResult ExpertAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 ExpertKind kind, int64_t hidden,
                                 Activation act) {
  if (kind == ExpertKind::ffn && hidden <= 0)
    return emitError() << "ffn experts need a positive hidden width, e.g. "
                          "#moe.expert<ffn, hidden = 2048>";
  if (kind == ExpertKind::linear && hidden != 0)
    return emitError() << "linear experts have no hidden layer; remove "
                          "'hidden = "
                       << hidden << "'";
  if (kind == ExpertKind::linear && act != Activation::relu)
    return emitError() << "linear experts have no activation; remove 'act'";
  return success();
}

LogicalResult LossesAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 APFloat importance, APFloat load,
                                 APFloat l2Balance,
                                 APFloat batchwiseThreshold) {
  std::pair<StringRef, double> weights[] = {
      {"importance", importance.convertToDouble()},
      {"load", load.convertToDouble()},
      {"l2_balance", l2Balance.convertToDouble()},
      {"batchwise_threshold", batchwiseThreshold.convertToDouble()}};
  for (auto [name, weight] : weights)
    if (!(weight >= 0.0))
      return emitError() << "loss weight '" << name
                         << "' must be non-negative, got "
                         << formatNumber(weight);
  return success();
}

LogicalResult InitAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               InitKind kind, APFloat scaleValue) {
  double scale = scaleValue.convertToDouble();
  if ((kind == InitKind::normal || kind == InitKind::uniform ||
       kind == InitKind::glorot_uniform) &&
      !(scale > 0.0))
    return emitError() << stringifyInitKind(kind)
                       << " initialization needs a positive scale, got "
                       << formatNumber(scale);
  return success();
}
