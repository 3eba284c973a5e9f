// Text to image behind POST /v1/images/generations: one diffusion model (diffusion/pipeline.h)
// loaded beside the server's language model, generating one request at a time (a generation
// uses every core; two at once would each take twice as long and twice the activations).
//
// A request's images use seeds seed, seed + 1, ... (a random seed when it names none), the
// model's defaults for what it leaves out (steps, guidance, sampler, size: as `sluice diffuse`),
// and come back as PNG bytes with the generation parameters in their text chunk, the same file
// `sluice diffuse` writes for those settings.
//
// Thread-safety: Generate may be called from any thread; calls run one after another.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/threads/thread_pool.h"
#include "diffusion/pipeline.h"
#include "server/openai_api.h"

namespace sluice::server {

struct ImageServiceOptions {
  int max_images = 4;                   // per request (n)
  int threads = 0;                      // 0: one per core
  std::string model_name;               // for the PNG's parameters text
  std::string version;                  // likewise ("sluice <version>")
  diffusion::GenerateOptions defaults;  // the model's defaults (prompt fields ignored)
};

class ImageService {
 public:
  static Result<std::unique_ptr<ImageService>> Create(
      std::unique_ptr<diffusion::DiffusionModel> model, const ImageServiceOptions& options);

  // The PNG files of the request's n images. InvalidArgument for a size the model cannot make;
  // Cancelled when *cancel was set.
  Result<std::vector<std::string>> Generate(const ImageRequest& request,
                                            const std::atomic<bool>* cancel);
  int max_images() const { return options_.max_images; }
  const std::string& model_name() const { return options_.model_name; }
  // Images made, and requests that stopped because *cancel was set (a client that left).
  uint64_t images_made() const { return images_made_.load(); }
  uint64_t requests_cancelled() const { return requests_cancelled_.load(); }

 private:
  ImageService() = default;

  std::unique_ptr<diffusion::DiffusionModel> model_;
  ImageServiceOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::mutex mu_;  // one generation at a time
  std::atomic<uint64_t> images_made_{0}, requests_cancelled_{0};
};

}  // namespace sluice::server
