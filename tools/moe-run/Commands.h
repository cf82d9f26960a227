//===- Commands.h - moe-run's subcommands ----------------------*- C++ -*-===//

#ifndef MOE_TOOLS_MOE_RUN_COMMANDS_H
#define MOE_TOOLS_MOE_RUN_COMMANDS_H

#include "tools/moe-run/Options.h"

namespace moe::run {

int runTrain(const CommonOptions &, const DataOptions &, const TrainOptions &);
int runEval(const CommonOptions &, const DataOptions &, const EvalOptions &);
int runGenerate(const CommonOptions &, const DataOptions &,
                const GenerateOptions &);
int runInspect(const CommonOptions &, const DataOptions &,
               const InspectOptions &);
int runTranslate(const CommonOptions &, const DataOptions &,
                 const TranslateOptions &);
int runGradcheck(const CommonOptions &, const GradcheckOptions &);
int runCheckDecodeStep(const CommonOptions &, double tolerance);
int runInfo(const CommonOptions &);

} // namespace moe::run

#endif // MOE_TOOLS_MOE_RUN_COMMANDS_H
