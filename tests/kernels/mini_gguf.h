// The minimum GGUF parsing the kernel tests need to read ../shared/refdata's files (the real
// reader is io/gguf_reader.h, which kernel tests do not link): tensor names, types, shapes and
// data; metadata skipped. Test code: trusts its input.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/base/ggml_type.h"

namespace sluice::testing {

struct Tensor {
  GgmlType type;
  std::vector<int64_t> dims;  // ne[0] (row length) first
  const uint8_t* data;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

class MiniGguf {
 public:
  bool Load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    bytes_.assign(std::istreambuf_iterator<char>(f), {});
    pos_ = 0;
    if (Read<uint32_t>() != 0x46554747u) return false;  // "GGUF"
    if (Read<uint32_t>() != 3) return false;
    const uint64_t n_tensors = Read<uint64_t>();
    const uint64_t n_kv = Read<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = ReadString();
      const uint32_t type = Read<uint32_t>();
      if (key == "general.alignment" && type == 4) {
        alignment = Read<uint32_t>();
      } else {
        SkipValue(type);
      }
    }
    struct Info {
      std::string name;
      Tensor t;
      uint64_t offset;
    };
    std::vector<Info> infos;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Info info;
      info.name = ReadString();
      const uint32_t n_dims = Read<uint32_t>();
      for (uint32_t d = 0; d < n_dims; ++d)
        info.t.dims.push_back(static_cast<int64_t>(Read<uint64_t>()));
      info.t.type = static_cast<GgmlType>(Read<uint32_t>());
      info.offset = Read<uint64_t>();
      infos.push_back(info);
    }
    const uint64_t data_start = (pos_ + alignment - 1) / alignment * alignment;
    for (Info& info : infos) {
      info.t.data = bytes_.data() + data_start + info.offset;
      tensors_[info.name] = info.t;
    }
    return pos_ <= bytes_.size();
  }

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  template <typename T>
  T Read() {
    T v{};
    if (pos_ + sizeof(T) <= bytes_.size()) std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string ReadString() {
    const uint64_t n = Read<uint64_t>();
    std::string s;
    if (pos_ + n <= bytes_.size()) s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void SkipValue(uint32_t type) {
    static const int kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      ReadString();
    } else if (type == 9) {
      const uint32_t elem = Read<uint32_t>();
      const uint64_t n = Read<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) SkipValue(elem);
    } else if (type < 13) {
      pos_ += kSizes[type];
    }
  }

  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace sluice::testing
