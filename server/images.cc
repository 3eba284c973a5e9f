#include "server/images.h"

#include <random>
#include <thread>
#include <utility>

#include "diffusion/png.h"

namespace sluice::server {

Result<std::unique_ptr<ImageService>> ImageService::Create(
    std::unique_ptr<diffusion::DiffusionModel> model, const ImageServiceOptions& options) {
  if (model == nullptr) return InvalidArgument("no diffusion model");
  if (options.max_images < 1) return InvalidArgument("max_images ", options.max_images, " < 1");
  auto s = std::unique_ptr<ImageService>(new ImageService());
  s->model_ = std::move(model);
  s->options_ = options;
  const unsigned cores = std::thread::hardware_concurrency();
  ASSIGN_OR_RETURN(
      s->pool_, ThreadPool::Create(options.threads > 0 ? options.threads
                                                       : static_cast<int>(cores > 0 ? cores : 1)));
  return s;
}

Result<std::vector<std::string>> ImageService::Generate(const ImageRequest& request,
                                                        const std::atomic<bool>* cancel) {
  diffusion::GenerateOptions o = options_.defaults;
  o.prompt = request.prompt;
  o.negative_prompt = request.negative_prompt;
  if (request.width > 0) o.width = request.width;
  if (request.height > 0) o.height = request.height;
  if (request.steps > 0) o.steps = request.steps;
  if (request.cfg_scale.has_value()) o.cfg_scale = *request.cfg_scale;
  uint64_t seed = 0;
  if (request.seed.has_value()) {
    seed = *request.seed;
  } else {
    std::random_device rd;
    seed = ((uint64_t{rd()} << 32) | rd()) >> 1;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> pngs;
  for (int i = 0; i < request.n; ++i) {
    o.seed = seed + static_cast<uint64_t>(i);
    diffusion::GenerateHooks hooks;
    hooks.cancel = cancel;
    diffusion::GenerateTimings timings;
    Result<diffusion::Image> made = diffusion::Generate(*model_, o, pool_.get(), hooks, &timings);
    if (!made.ok()) {
      if (made.status().code() == StatusCode::kCancelled) ++requests_cancelled_;
      return made.status();
    }
    const diffusion::Image& image = *made;
    ++images_made_;
    ASSIGN_OR_RETURN(
        std::string png,
        diffusion::EncodePng(
            image.width, image.height, image.rgb,
            {{"parameters", diffusion::ParametersText(o, options_.model_name, options_.version)}}));
    pngs.push_back(std::move(png));
  }
  return pngs;
}

}  // namespace sluice::server
