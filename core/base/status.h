// Status and Result<T>: the channel for operating errors (I/O, parsing, corrupt data, bad options,
// resource limits). The message must let a user act: name the file, the offset or tensor, and what
// was expected versus found. Programmer errors use CHECK instead (core/base/check.h).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "core/base/check.h"
#include "core/base/str_cat.h"

namespace sluice {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad flag, bad option value, bad request
  kNotFound,           // missing file, key or tensor
  kIoError,            // a system call failed (errno in the message)
  kCorrupt,            // bytes on disk are not what the format says (bad magic, checksum, bounds)
  kUnsupported,        // valid input we do not handle (version, type, architecture)
  kResourceExhausted,  // RAM budget, disk space, queue limits
  kCancelled,          // the user stopped it (Ctrl-C)
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: model.sluice: expert (3, 17) at offset 4096: xxh3 expected ..., found ..."
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status InvalidArgument(const Args&... args) {
  return Status(StatusCode::kInvalidArgument, StrCat(args...));
}
template <typename... Args>
Status NotFound(const Args&... args) {
  return Status(StatusCode::kNotFound, StrCat(args...));
}
template <typename... Args>
Status IoError(const Args&... args) {
  return Status(StatusCode::kIoError, StrCat(args...));
}
template <typename... Args>
Status Corrupt(const Args&... args) {
  return Status(StatusCode::kCorrupt, StrCat(args...));
}
template <typename... Args>
Status Unsupported(const Args&... args) {
  return Status(StatusCode::kUnsupported, StrCat(args...));
}
template <typename... Args>
Status ResourceExhausted(const Args&... args) {
  return Status(StatusCode::kResourceExhausted, StrCat(args...));
}
template <typename... Args>
Status Cancelled(const Args&... args) {
  return Status(StatusCode::kCancelled, StrCat(args...));
}
template <typename... Args>
Status Internal(const Args&... args) {
  return Status(StatusCode::kInternal, StrCat(args...));
}

// errno text, e.g. "No space left on device (errno 28)".
std::string ErrnoString(int err);

// A value or an error. Accessing the value of an error Result is a programmer error (CHECK).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    CHECK(!status_.ok()) << "Result constructed from an OK status";
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  const T& value() const& {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  T&& value() && {
    CHECK(ok()) << status_.ToString();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace sluice

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)

// RETURN_IF_ERROR(expr): expr yields a Status; return it from the caller when not ok.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::sluice::Status _st = (expr);             \
    if (!_st.ok()) return _st;                 \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): expr yields a Result<T>; on error return its status, otherwise
// move the value into lhs (which may be a declaration: `ASSIGN_OR_RETURN(auto f, Open(p));`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
