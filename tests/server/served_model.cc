#include "tests/server/served_model.h"

#include "io/model_open.h"
#include "tests/support/test_model.h"

namespace sluice::server::testing {

const std::string& ServedModel::Path() {
  static sluice::testing::TempDir* dir = new sluice::testing::TempDir();  // lives to the exit
  static const std::string path = [] {
    const std::string p = dir->File("served.gguf");
    Status s = sluice::testing::WriteTestModel(p, {});
    CHECK(s.ok()) << s.ToString();
    return p;
  }();
  return path;
}

Status ServedModel::Open(int parallel, int max_queued, ServedModel* out, EngineOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(Path()));
  ASSIGN_OR_RETURN(out->tokenizer, Tokenizer::FromMetadata(model->metadata()));
  ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::FromMetadata(model->metadata()));
  out->chat_template = std::make_unique<ChatTemplate>(std::move(t));
  options.max_sequences = parallel;
  options.context_length = options.context_length > 0 ? options.context_length : 1024;
  ASSIGN_OR_RETURN(out->engine, Engine::Create(std::move(model), options));
  ASSIGN_OR_RETURN(out->scheduler,
                   BatchScheduler::Create(out->engine.get(), out->tokenizer.get(),
                                          {.max_sequences = parallel, .max_queued = max_queued}));
  return Status::Ok();
}

ServedModel::Outcome ServedModel::Collect(Generation& g) {
  Outcome o;
  for (;;) {
    Generation::Update u = g.Wait(1000);
    o.text += u.text;
    if (u.done) {
      o.reason = u.reason;
      o.stats = u.stats;
      return o;
    }
  }
}

}  // namespace sluice::server::testing
