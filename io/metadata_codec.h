// GGUF v3 key/value encoding of Metadata, shared by the GGUF reader/writer and the archive (whose
// metadata section is the same bytes, so a GGUF -> archive -> GGUF round trip loses nothing).
//
// One KV pair, little-endian:
//   u64 key_length, key bytes (UTF-8, no terminator)
//   u32 value type (MetaType)
//   value: u8/i8/bool 1 byte, u16/i16 2, u32/i32/f32 4, u64/i64/f64 8,
//          string = u64 length + bytes,
//          array  = u32 element type, u64 count, count elements encoded as above.
// Arrays of arrays are legal GGUF but MetaValue cannot hold them: decoding one is Unsupported.
//
// Non-goals: the GGUF header (magic, version, counts) and tensor infos; those belong to the GGUF
// reader and writer. Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/status.h"
#include "io/metadata.h"

namespace sluice {

// Limits that keep a corrupt length field from allocating gigabytes before the bounds check fails.
inline constexpr uint64_t kMaxMetaKeyBytes = 65536;
inline constexpr uint64_t kMaxMetaStringBytes = 1ull << 30;

// Appends every key of `metadata`, in key order, to `out`. Programmer errors (CHECK): an array
// element type of kArray, or a value type out of range.
void EncodeMetadataKv(const Metadata& metadata, std::string* out);

// Decodes `count` KV pairs from data[0, size). `source` (a file path) and `base_offset` (the
// absolute file offset of data[0]) appear in every error, with the key being decoded, e.g.
//   "model.gguf: metadata key 'tokenizer.ggml.tokens' at offset 1234: string length 9e18 runs
//    past the end of the section (ends at offset 5678)".
// On success *consumed (if not null) is the number of bytes read. The returned Metadata has
// source() set to `source`.
Result<Metadata> DecodeMetadataKv(const uint8_t* data, uint64_t size, uint64_t count,
                                  const std::string& source, uint64_t base_offset,
                                  uint64_t* consumed);

}  // namespace sluice
