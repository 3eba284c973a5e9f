#include "io/gguf_convert.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <vector>

#include "io/gguf_model_file.h"

namespace sluice {
namespace {

// Open read-only descriptors of every shard, closed on scope exit.
class ShardFds {
 public:
  ~ShardFds() {
    for (int fd : fds_) ::close(fd);
  }
  Status Open(const std::vector<std::string>& paths) {
    for (const std::string& p : paths) {
      const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return IoError(p, ": open: ", ErrnoString(errno));
      fds_.push_back(fd);
    }
    return Status::Ok();
  }
  int operator[](int i) const { return fds_[i]; }

 private:
  std::vector<int> fds_;
};

Status ReadFully(int fd, uint8_t* out, uint64_t bytes, uint64_t offset, const std::string& path) {
  for (uint64_t done = 0; done < bytes;) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return IoError(path, ": read of ", bytes, " bytes at offset ", offset, ": ",
                     ErrnoString(errno));
    if (n == 0) {
      return Corrupt(path, ": unexpected end of file at offset ", offset + done,
                     " (the file shrank "
                     "while being converted?)");
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Refuses to write the archive over one of the model's own files.
Status CheckNotAnInput(const std::string& out, const std::vector<std::string>& inputs) {
  struct stat out_st;
  if (::stat(out.c_str(), &out_st) != 0) return Status::Ok();  // does not exist yet
  for (const std::string& in : inputs) {
    struct stat in_st;
    if (::stat(in.c_str(), &in_st) == 0 && in_st.st_dev == out_st.st_dev &&
        in_st.st_ino == out_st.st_ino) {
      return InvalidArgument(out, ": is the input model file ", in, "; choose another output path");
    }
  }
  return Status::Ok();
}

bool IsCancelled(const ConvertOptions& options) {
  return options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed);
}

}  // namespace

Result<ConvertStats> ConvertGgufToArchive(const std::string& gguf_path,
                                          const std::string& archive_path,
                                          const ConvertOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufModelFile> model, GgufModelFile::Open(gguf_path));
  RETURN_IF_ERROR(CheckNotAnInput(archive_path, model->file_paths()));

  ArchivePlan plan;
  plan.metadata = model->metadata();
  plan.dense = model->dense_tensors();
  uint64_t max_expert_bytes = 0;
  for (int layer = 0; layer < model->layer_limit(); ++layer) {
    std::optional<ExpertTensors> t = model->expert_tensors(layer);
    if (!t) continue;
    plan.expert_layers.push_back({.layer = layer, .tensors = *t});
    const ExpertLocation loc = model->LocateExpert(layer, 0);
    uint64_t bytes = 0;
    for (const auto& m : loc.matrices) bytes += m.bytes;
    max_expert_bytes = std::max(max_expert_bytes, bytes);
  }
  ConvertStats stats;
  stats.dense_tensors = plan.dense.size();
  stats.expert_layers = plan.expert_layers.size();

  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveWriter> writer,
                   ArchiveWriter::Create(archive_path, plan, options.writer));
  const uint64_t total = writer->payload_bytes();
  auto progress = [&] {
    if (options.on_progress) options.on_progress(writer->bytes_written(), total);
  };
  auto cancelled = [&] {
    return IsCancelled(options) ? Cancelled(archive_path, ": conversion cancelled; nothing written")
                                : Status::Ok();
  };

  // Dense tensors straight from the GGUF's mapping, as the engine uses them.
  const std::vector<TensorInfo>& dense = model->dense_tensors();
  for (size_t i = 0; i < dense.size(); ++i) {
    RETURN_IF_ERROR(cancelled());
    RETURN_IF_ERROR(
        writer->WriteDense(i, std::span<const uint8_t>(dense[i].data, dense[i].nbytes)));
    progress();
  }

  // Experts (nearly all of the bytes) through pread into one reused buffer: memory stays at one
  // expert, and a failing disk is an IoError here rather than a SIGBUS from the mapping.
  ShardFds fds;
  RETURN_IF_ERROR(fds.Open(model->file_paths()));
  std::vector<uint8_t> buffer(max_expert_bytes);
  for (const ArchiveExpertLayerPlan& layer : plan.expert_layers) {
    const int n_expert = static_cast<int>(layer.tensors.gate.ne[2]);
    for (int e = 0; e < n_expert; ++e) {
      RETURN_IF_ERROR(cancelled());
      const ExpertLocation loc = model->LocateExpert(layer.layer, e);
      std::span<const uint8_t> parts[3];
      uint64_t at = 0;
      for (int m = 0; m < 3; ++m) {
        const ExpertLocation::Extent& x = loc.matrices[m];
        CHECK_LE(at + x.bytes, buffer.size());
        RETURN_IF_ERROR(ReadFully(fds[x.file_index], buffer.data() + at, x.bytes, x.offset,
                                  model->file_paths()[x.file_index]));
        parts[m] = std::span<const uint8_t>(buffer.data() + at, x.bytes);
        at += x.bytes;
      }
      RETURN_IF_ERROR(writer->AddExpert(layer.layer, e, parts[0], parts[1], parts[2]));
      ++stats.experts;
      progress();
    }
  }
  RETURN_IF_ERROR(cancelled());
  RETURN_IF_ERROR(writer->Finish());
  stats.payload_bytes = total;
  stats.file_bytes = writer->file_bytes();
  return stats;
}

}  // namespace sluice
