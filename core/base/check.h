// Programmer-error checks. CHECK is always on; DCHECK only in debug and sanitizer builds.
// A failed check prints file:line, the condition and any streamed context, then aborts.
// Operating errors (I/O, parsing, bad flags) never use these: they return Status.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace sluice::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": CHECK failed: " << condition << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << "context"` compile as a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace sluice::internal

#define CHECK(condition)                    \
  (condition) ? (void)0                     \
              : ::sluice::internal::Voidify() & \
                    ::sluice::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define CHECK_OP(a, op, b) CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)

#if !defined(NDEBUG) || defined(SLUICE_SANITIZE)
#define DCHECK(condition) CHECK(condition)
#define DCHECK_EQ(a, b) CHECK_EQ(a, b)
#define DCHECK_LT(a, b) CHECK_LT(a, b)
#define DCHECK_LE(a, b) CHECK_LE(a, b)
#else
#define DCHECK(condition) \
  while (false) CHECK(condition)
#define DCHECK_EQ(a, b) \
  while (false) CHECK_EQ(a, b)
#define DCHECK_LT(a, b) \
  while (false) CHECK_LT(a, b)
#define DCHECK_LE(a, b) \
  while (false) CHECK_LE(a, b)
#endif
