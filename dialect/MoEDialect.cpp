//===- MoEDialect.cpp - The moe dialect and its argument attributes -------===//
//
// Registers ops and attributes, and verifies the function-argument
// attributes that mark parameters (moe.param + moe.init) and data inputs
// (moe.input).
//
//===----------------------------------------------------------------------===//

#include "dialect/MoEDialect.h"
#include "dialect/MoEOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialect/MoEDialect.cpp.inc"

void MoEDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/MoEOps.cpp.inc"
      >();
  registerAttributes();
}

/// Checks one moe.* attribute on argument `argIndex` of a function.
LogicalResult MoEDialect::verifyRegionArgAttribute(Operation *op,
                                                   unsigned regionIndex,
                                                   unsigned argIndex,
                                                   NamedAttribute attr) {
  auto func = dyn_cast<FunctionOpInterface>(op);
  if (!func)
    return op->emitError() << "'" << attr.getName()
                           << "' is only valid on function arguments";
  StringRef name = attr.getName().getValue();
  Type argType = func.getArgumentTypes()[argIndex];
  auto argError = [&]() {
    return op->emitError() << "argument #" << argIndex << ": ";
  };

  if (name == kParamAttrName) {
    auto paramName = dyn_cast<StringAttr>(attr.getValue());
    if (!paramName || paramName.getValue().empty())
      return argError() << "'moe.param' must be a non-empty string naming "
                           "the parameter";
    auto tensor = dyn_cast<RankedTensorType>(argType);
    if (!tensor || !tensor.hasStaticShape() || !tensor.getElementType().isF32())
      return argError() << "parameter '" << paramName.getValue()
                        << "' must be a statically shaped f32 tensor, got "
                        << argType;
    if (!checkedTensorBytes(tensor))
      return argError() << "parameter '" << paramName.getValue() << "' of type "
                        << argType << " has 2^60 or more bytes";
    if (!func.getArgAttr(argIndex, kInitAttrName))
      return argError() << "parameter '" << paramName.getValue()
                        << "' has no initializer: add moe.init = "
                           "#moe.init<...>";
    // Parameter names key checkpoints, so they must be unique.
    for (unsigned other = 0; other < argIndex; ++other)
      if (func.getArgAttr(other, kParamAttrName) == paramName)
        return argError() << "parameter name '" << paramName.getValue()
                          << "' is already used by argument #" << other;
    return success();
  }
  if (name == kInitAttrName) {
    if (!isa<InitAttr>(attr.getValue()))
      return argError() << "'moe.init' must be an #moe.init<...> attribute";
    if (!func.getArgAttr(argIndex, kParamAttrName))
      return argError() << "'moe.init' given without 'moe.param' naming the "
                           "parameter";
    return success();
  }
  if (name == kInputAttrName) {
    auto inputName = dyn_cast<StringAttr>(attr.getValue());
    if (!inputName || inputName.getValue().empty())
      return argError() << "'moe.input' must be a non-empty string naming "
                           "the data input";
    if (func.getArgAttr(argIndex, kParamAttrName))
      return argError() << "an argument is either a parameter or a data "
                           "input, not both";
    // Data inputs are token ids and targets, fed to moe.embedding and
    // moe.softmax_cross_entropy.
    auto tensor = dyn_cast<RankedTensorType>(argType);
    if (!tensor || !tensor.hasStaticShape() ||
        !tensor.getElementType().isSignlessInteger(32))
      return argError() << "data input '" << inputName.getValue()
                        << "' must be a statically shaped i32 tensor of "
                           "ids, got "
                        << argType;
    // Inputs are fed by name.
    for (unsigned other = 0; other < argIndex; ++other)
      if (func.getArgAttr(other, kInputAttrName) == inputName)
        return argError() << "data input name '" << inputName.getValue()
                          << "' is already used by argument #" << other;
    if (!checkedTensorBytes(tensor))
      return argError() << "data input '" << inputName.getValue()
                        << "' of type " << argType << " has 2^60 or more bytes";
    return success();
  }
  if (name == kStateAttrName) {
    auto stateName = dyn_cast<StringAttr>(attr.getValue());
    if (!stateName || stateName.getValue().empty())
      return argError() << "'moe.state' must be a non-empty string naming "
                           "the training state";
    return success();
  }
  return argError() << "unknown argument attribute '" << name
                    << "'; expected moe.param, moe.init, moe.input or "
                       "moe.state";
}
