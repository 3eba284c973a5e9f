#include "cli/model_check.h"

#include <memory>

#include "io/model_open.h"
#include "llm/model_config.h"
#include "llm/tensor_plan.h"

namespace sluice {

Status CheckModelStructure(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
  ASSIGN_OR_RETURN(ModelConfig config, ReadModelConfig(model->metadata()));
  return CheckModelTensors(*model, config);
}

}  // namespace sluice
